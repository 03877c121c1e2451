package identity_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ctlidentity "github.com/linkerd-go/linkerd/controller/identity"
	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/pki"
	identityv1 "github.com/linkerd-go/linkerd/proto/identity/v1"
)

// writeFile replaces path atomically, as a Kubernetes volume update does.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writeIssuer writes ca's certificate (and intermediates) and key.
func writeIssuer(t *testing.T, files ctlidentity.IssuerFiles, ca *pki.CA) {
	t.Helper()
	keyPEM, err := pki.EncodePrivateKeyPEM(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, files.Cert, pki.EncodeCertificatesPEM(ca.Chain()...))
	writeFile(t, files.Key, keyPEM)
}

// newWatched returns a fixture whose server gets its issuer from files
// watched by the returned watcher, with the fixture's issuer written there.
func newWatched(t *testing.T, logs *bytes.Buffer) (*fixture, *ctlidentity.Watcher, ctlidentity.IssuerFiles) {
	t.Helper()
	f := newFixture(t, false)
	dir := t.TempDir()
	files, err := ctlidentity.IssuerFilesInDir(dir, identity.IssuerSchemeLinkerd, filepath.Join(dir, "ca-bundle.crt"))
	if err != nil {
		t.Fatal(err)
	}
	writeIssuer(t, files, f.issuer)
	writeFile(t, files.TrustAnchors, pki.EncodeCertificatesPEM(f.anchor.Cert))
	log := slog.New(slog.DiscardHandler)
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, nil))
	}
	w, err := ctlidentity.NewWatcher(ctlidentity.WatcherConfig{
		Files: files, Interval: 10 * time.Millisecond, OnLoad: f.server.SetIssuer, Metrics: f.metrics, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f, w, files
}

func TestWatcherInitialLoad(t *testing.T) {
	f, w, _ := newWatched(t, nil)
	if f.server.Ready() {
		t.Fatal("ready before loading")
	}
	changed, err := w.Reload()
	if err != nil || !changed {
		t.Fatalf("Reload = %v, %v; want true, nil", changed, err)
	}
	if !f.server.Ready() || !pki.SameCertificate(f.server.Issuer().Cert, f.issuer.Cert) {
		t.Fatal("issuer not loaded")
	}
	changed, err = w.Reload()
	if err != nil || changed {
		t.Fatalf("second Reload = %v, %v; want false, nil", changed, err)
	}
	if got := counter(t, f.reg, "identity_issuer_reload_total", "result", "success"); got != 1 {
		t.Fatalf("reload successes = %v, want 1", got)
	}
}

func TestIssuerFilesInDir(t *testing.T) {
	tests := []struct {
		scheme, cert, key string
		ok                bool
	}{
		{identity.IssuerSchemeLinkerd, "/d/crt.pem", "/d/key.pem", true},
		{"", "/d/crt.pem", "/d/key.pem", true},
		{identity.IssuerSchemeKubernetes, "/d/tls.crt", "/d/tls.key", true},
		{"bogus", "", "", false},
	}
	for _, tt := range tests {
		files, err := ctlidentity.IssuerFilesInDir("/d", tt.scheme, "/a")
		if (err == nil) != tt.ok {
			t.Errorf("%q: error %v, want ok=%v", tt.scheme, err, tt.ok)
			continue
		}
		if tt.ok && (files.Cert != tt.cert || files.Key != tt.key || files.TrustAnchors != "/a") {
			t.Errorf("%q: %+v", tt.scheme, files)
		}
	}
}

func TestWatcherRejectsBadIssuer(t *testing.T) {
	var logs bytes.Buffer
	f, w, files := newWatched(t, &logs)
	if _, err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	good := f.issuer
	goodKeyPEM, _ := pki.EncodePrivateKeyPEM(good.Key)

	foreignAnchor, _ := pki.NewCA("foreign", time.Hour)
	foreignIss, _ := foreignAnchor.NewIssuer(identity.IssuerName(controlNS, trustDomain), time.Hour)
	expiredIss, _ := f.anchor.NewIssuerWithValidity(identity.IssuerName(controlNS, trustDomain),
		pki.Validity{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	otherIss, _ := f.anchor.NewIssuer(identity.IssuerName(controlNS, trustDomain), time.Hour)
	leafCA := &pki.CA{Cert: signedLeaf(t, good), Key: good.Key}

	tests := []struct {
		name    string
		write   func()
		wantErr string
	}{
		{"garbage certificate", func() { writeFile(t, files.Cert, []byte("garbage")) }, "issuer certificate"},
		{"garbage key", func() { writeFile(t, files.Key, []byte("garbage")) }, "issuer key"},
		{"key of another issuer", func() { writeFile(t, files.Cert, pki.EncodeCertificatesPEM(otherIss.Cert)) }, "does not match"},
		{"signed by a foreign anchor", func() { writeIssuer(t, files, foreignIss) }, "verify issuer"},
		{"expired", func() { writeIssuer(t, files, expiredIss) }, "verify issuer"},
		{"not a CA", func() { writeIssuer(t, files, leafCA) }, "not a CA"},
		{"anchors replaced by a foreign anchor", func() {
			writeFile(t, files.TrustAnchors, pki.EncodeCertificatesPEM(foreignAnchor.Cert))
		}, "verify issuer"},
		{"anchors garbage", func() { writeFile(t, files.TrustAnchors, []byte("x")) }, "trust anchors"},
		{"key file missing", func() {
			if err := os.Remove(files.Key); err != nil {
				t.Fatal(err)
			}
		}, "read issuer key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Start from the good material each time.
			writeFile(t, files.Cert, pki.EncodeCertificatesPEM(good.Cert))
			writeFile(t, files.Key, goodKeyPEM)
			writeFile(t, files.TrustAnchors, pki.EncodeCertificatesPEM(f.anchor.Cert))
			if _, err := w.Reload(); err != nil {
				t.Fatalf("restore: %v", err)
			}
			failures := counter(t, f.reg, "identity_issuer_reload_total", "result", "failure")
			logs.Reset()

			tt.write()
			changed, err := w.Reload()
			if err == nil || changed || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Reload = %v, %v; want an error containing %q", changed, err, tt.wantErr)
			}
			if !pki.SameCertificate(f.server.Issuer().Cert, good.Cert) || !f.server.Ready() {
				t.Fatal("the good issuer was replaced")
			}
			if !strings.Contains(logs.String(), "keeping the current one") {
				t.Errorf("no log line about the rejection: %q", logs.String())
			}
			// The same bad content is retried but reported once.
			if _, err := w.Reload(); err == nil {
				t.Fatal("second Reload of bad content succeeded")
			}
			if got := counter(t, f.reg, "identity_issuer_reload_total", "result", "failure"); got != failures+1 {
				t.Errorf("reload failures = %v, want %v", got, failures+1)
			}
			if n := strings.Count(logs.String(), "rejected"); n != 1 {
				t.Errorf("%d rejection log lines, want 1", n)
			}
			// Still serving with the old issuer.
			resp, err := f.client.Certify(context.Background(), &identityv1.CertifyRequest{
				Identity: webID, Token: f.token(t, "web", "emojivoto"), CsrDer: goodCSR(t, webID),
			})
			if err != nil {
				t.Fatalf("Certify after rejected reload: %v", err)
			}
			verifyResponse(t, resp, []*x509.Certificate{f.anchor.Cert}, webID)
		})
	}
}

func TestWatcherNoFilesAtStart(t *testing.T) {
	f, w, files := newWatched(t, nil)
	if err := os.Remove(files.Cert); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reload(); err == nil {
		t.Fatal("Reload without a certificate succeeded")
	}
	if f.server.Ready() {
		t.Fatal("ready without an issuer")
	}
	writeIssuer(t, files, f.issuer)
	if changed, err := w.Reload(); !changed || err != nil {
		t.Fatalf("Reload after the files appeared = %v, %v", changed, err)
	}
	if !f.server.Ready() {
		t.Fatal("not ready")
	}
}

func TestWatcherBundleWithAnchor(t *testing.T) {
	// crt.pem holding "issuer + anchor" (as some tools write it) loads, and
	// the anchor is not sent to proxies.
	f, w, files := newWatched(t, nil)
	keyPEM, _ := pki.EncodePrivateKeyPEM(f.issuer.Key)
	writeFile(t, files.Cert, pki.EncodeCertificatesPEM(f.issuer.Cert, f.anchor.Cert))
	writeFile(t, files.Key, keyPEM)
	if _, err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(f.server.Issuer().Intermediates); n != 0 {
		t.Fatalf("%d intermediates, want 0", n)
	}
}

// TestRotation swaps the issuer while a client calls Certify in a loop:
// no call may fail, and certificates issued after the swap chain to the new
// issuer.
func TestRotation(t *testing.T) {
	f, w, files := newWatched(t, nil)
	if _, err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	newIss, err := f.anchor.NewIssuer(identity.IssuerName(controlNS, trustDomain), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok := f.token(t, "web", "emojivoto")
	csr := goodCSR(t, webID)
	anchors := []*x509.Certificate{f.anchor.Cert}

	const calls = 200
	type result struct {
		leaf *x509.Certificate
		err  error
	}
	results := make([]result, calls)
	halfway := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range calls {
			if i == calls/4 {
				close(halfway)
			}
			resp, err := f.client.Certify(context.Background(), &identityv1.CertifyRequest{Identity: webID, Token: tok, CsrDer: csr})
			if err != nil {
				results[i].err = err
				continue
			}
			leaf, err := x509.ParseCertificate(resp.GetLeafDer())
			if err == nil && len(resp.GetChainDer()) == 1 {
				var iss *x509.Certificate
				if iss, err = x509.ParseCertificate(resp.GetChainDer()[0]); err == nil {
					err = pki.VerifyChain(leaf, []*x509.Certificate{iss}, anchors)
				}
			}
			results[i] = result{leaf: leaf, err: err}
		}
	}()

	<-halfway
	writeIssuer(t, files, newIss)
	w.Trigger()
	wg.Wait()

	var oldCount, newCount int
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("call %d failed: %v", i, r.err)
		}
		switch {
		case r.leaf.CheckSignatureFrom(f.issuer.Cert) == nil:
			if newCount > 0 {
				t.Fatalf("call %d signed by the old issuer after the new one was used", i)
			}
			oldCount++
		case r.leaf.CheckSignatureFrom(newIss.Cert) == nil:
			newCount++
		default:
			t.Fatalf("call %d signed by neither issuer", i)
		}
	}
	if oldCount == 0 {
		t.Error("no certificate from the old issuer: the swap happened too early to test anything")
	}
	if newCount == 0 {
		// The loop may outrun the poll; wait for the swap and try once more.
		testkit.EventuallyTrue(t, 30*time.Second, "the new issuer to be loaded", func() bool {
			return pki.SameCertificate(f.server.Issuer().Cert, newIss.Cert)
		})
		resp, err := f.client.Certify(context.Background(), &identityv1.CertifyRequest{Identity: webID, Token: tok, CsrDer: csr})
		if err != nil {
			t.Fatal(err)
		}
		leaf := verifyResponse(t, resp, anchors, webID)
		if leaf.CheckSignatureFrom(newIss.Cert) != nil {
			t.Fatal("new issuer never used")
		}
	}
	t.Logf("%d certificates from the old issuer, %d from the new", oldCount, newCount)
	if got := counter(t, f.reg, "identity_issuer_expiry_timestamp_seconds"); got != float64(newIss.Cert.NotAfter.Unix()) {
		t.Errorf("issuer expiry gauge = %v, want the new issuer's %d", got, newIss.Cert.NotAfter.Unix())
	}
}

// TestRunPicksUpChanges checks polling alone (no Trigger) notices a change.
func TestRunPicksUpChanges(t *testing.T) {
	f, w, files := newWatched(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- w.Run(ctx) }()
	defer func() {
		cancel()
		<-runDone
	}()
	waitFor := func(want *x509.Certificate) {
		t.Helper()
		testkit.EventuallyTrue(t, 30*time.Second, "issuer "+want.Subject.CommonName+" to be loaded", func() bool {
			iss := f.server.Issuer()
			return iss != nil && pki.SameCertificate(iss.Cert, want)
		})
	}
	waitFor(f.issuer.Cert)
	next, _ := f.anchor.NewIssuer("next", time.Hour)
	writeIssuer(t, files, next)
	waitFor(next.Cert)
}

func signedLeaf(t *testing.T, ca *pki.CA) *x509.Certificate {
	t.Helper()
	der, err := pki.MakeCSR(ca.Key, "leaf")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.SignCSR(csr, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
