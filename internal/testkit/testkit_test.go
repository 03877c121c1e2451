package testkit

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/pki"
)

func TestPoll(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	err := Poll(5*time.Second, func() error {
		if calls.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls.Load() != 3 {
		t.Fatalf("Poll = %v after %d calls; want nil after 3", err, calls.Load())
	}

	errNever := errors.New("never")
	start := time.Now()
	err = Poll(30*time.Millisecond, func() error { return errNever })
	if !errors.Is(err, errNever) || !strings.Contains(err.Error(), "30ms") {
		t.Fatalf("Poll = %v; want an error wrapping %v that names the timeout", err, errNever)
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Fatalf("Poll gave up after %v, before its 30ms timeout", waited)
	}
}

// recorder is a testing.TB that records Fatal and Skip instead of stopping.
type recorder struct {
	testing.TB
	fatal, skipped string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Fatal(args ...any)         { r.fatal = strings.TrimSpace(sprint(args...)) }
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = sprintf(f, a...) }
func (r *recorder) Skipf(f string, a ...any)  { r.skipped = sprintf(f, a...) }

func TestEventually(t *testing.T) {
	t.Parallel()
	r := &recorder{TB: t}
	EventuallyTrue(r, 20*time.Millisecond, "the moon turned blue", func() bool { return false })
	if !strings.Contains(r.fatal, "the moon turned blue") {
		t.Fatalf("failure message %q does not say what was awaited", r.fatal)
	}
	r = &recorder{TB: t}
	n := 0
	EventuallyTrue(r, time.Second, "n reaches 2", func() bool { n++; return n >= 2 })
	if r.fatal != "" || n != 2 {
		t.Fatalf("EventuallyTrue: fatal %q after %d calls; want success after 2", r.fatal, n)
	}
}

func TestSkipOrFail(t *testing.T) {
	for _, tc := range []struct {
		ci        string
		wantFatal bool
	}{{"", false}, {"false", false}, {"true", true}} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv(StrictEnv, tc.ci)
			r := &recorder{TB: t}
			SkipOrFail(r, "no %s here", "iptables")
			got := r.skipped
			if tc.wantFatal {
				got = r.fatal
			}
			if !strings.Contains(got, "no iptables here") || (r.fatal != "") != tc.wantFatal {
				t.Fatalf("CI=%q: skipped %q, fatal %q", tc.ci, r.skipped, r.fatal)
			}
		})
	}
}

func TestMeshCA(t *testing.T) {
	t.Parallel()
	ca := NewMeshCA(t, time.Hour)
	name := identity.Name("web", "emojivoto", ControlPlaneNamespace, TrustDomain)
	leaf := ca.Leaf(t, name, time.Minute)
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{
		DNSName:       name,
		Roots:         ca.Pool(),
		Intermediates: pki.CertPool(ca.Issuer.Chain()),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		t.Fatalf("leaf does not verify against the anchor: %v", err)
	}
	if _, err := tls.X509KeyPair(pemChain(t, leaf), mustKeyPEM(t, leaf)); err != nil {
		t.Fatalf("leaf is not a usable key pair: %v", err)
	}

	for _, scheme := range []string{identity.IssuerSchemeLinkerd, identity.IssuerSchemeKubernetes} {
		dir := t.TempDir()
		anchors := ca.WriteIssuer(t, dir, scheme)
		crt, key := "crt.pem", "key.pem"
		if scheme == identity.IssuerSchemeKubernetes {
			crt, key = "tls.crt", "tls.key"
		}
		certPEM, err1 := os.ReadFile(filepath.Join(dir, crt))
		keyPEM, err2 := os.ReadFile(filepath.Join(dir, key))
		anchorsPEM, err3 := os.ReadFile(anchors)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		issuer, err := pki.LoadIssuer(certPEM, keyPEM)
		if err != nil {
			t.Fatalf("%s: loading the written issuer: %v", scheme, err)
		}
		roots, err := pki.DecodeCertificatesPEM(anchorsPEM)
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.VerifyIssuer(issuer, roots); err != nil {
			t.Fatalf("%s: written issuer does not chain to the written anchors: %v", scheme, err)
		}
	}
}

func pemChain(t *testing.T, c tls.Certificate) []byte {
	t.Helper()
	var certs []*x509.Certificate
	for _, der := range c.Certificate {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, cert)
	}
	return pki.EncodeCertificatesPEM(certs...)
}
