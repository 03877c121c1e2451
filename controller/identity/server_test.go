package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ctlidentity "github.com/linkerd-go/linkerd/controller/identity"
	"github.com/linkerd-go/linkerd/controller/identity/localtoken"
	"github.com/linkerd-go/linkerd/internal/syncbuf"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/pki"
	identityv1 "github.com/linkerd-go/linkerd/proto/identity/v1"
)

const (
	controlNS   = "linkerd"
	trustDomain = "cluster.local"
)

var webID = identity.Name("web", "emojivoto", controlNS, trustDomain)

type fixture struct {
	anchor  *pki.CA
	issuer  *pki.CA
	tokens  *localtoken.Issuer
	reg     *prometheus.Registry
	metrics *ctlidentity.Metrics
	server  *ctlidentity.Server
	client  identityv1.IdentityClient
	logs    *syncbuf.Buffer
}

// newFixture starts an identity server with a local-token validator on
// 127.0.0.1 and connects a client to it. The issuer is loaded when
// withIssuer is true.
func newFixture(t *testing.T, withIssuer bool, opts ...func(*ctlidentity.Config)) *fixture {
	t.Helper()
	anchor, err := pki.NewCA(identity.TrustAnchorName(controlNS, trustDomain), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := anchor.NewIssuer(identity.IssuerName(controlNS, trustDomain), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := localtoken.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{anchor: anchor, issuer: iss, tokens: &localtoken.Issuer{Key: key}, reg: prometheus.NewRegistry(), logs: &syncbuf.Buffer{}}
	f.metrics, err = ctlidentity.NewMetrics(f.reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ctlidentity.Config{
		TrustDomain: trustDomain, ControllerNamespace: controlNS,
		IssuanceLifetime: 24 * time.Hour, ClockSkewAllowance: 20 * time.Second,
		Validator: f.tokens, Metrics: f.metrics,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	f.server, err = ctlidentity.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if withIssuer {
		f.server.SetIssuer(iss)
	}
	f.client = serve(t, f.server)
	return f
}

// serve runs srv on a real TCP listener on 127.0.0.1 and returns a client.
func serve(t *testing.T, srv identityv1.IdentityServer) identityv1.IdentityClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	identityv1.RegisterIdentityServer(gs, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		<-done
	})
	return identityv1.NewIdentityClient(conn)
}

func (f *fixture) token(t *testing.T, sa, ns string) []byte {
	t.Helper()
	tok, err := f.tokens.Issue(sa, ns, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func p256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func csrDER(t *testing.T, key any, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func goodCSR(t *testing.T, name string) []byte {
	t.Helper()
	der, err := pki.MakeCSR(p256(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// counter reads a counter from reg; labels are name/value pairs.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

// verifyResponse checks a successful response against the anchors and
// returns the leaf.
func verifyResponse(t *testing.T, resp *identityv1.CertifyResponse, anchors []*x509.Certificate, name string) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(resp.GetLeafDer())
	if err != nil {
		t.Fatalf("parse leaf: %v", err)
	}
	var chain []*x509.Certificate
	for _, der := range resp.GetChainDer() {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("parse chain: %v", err)
		}
		chain = append(chain, c)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		_, err := leaf.Verify(x509.VerifyOptions{
			DNSName: name, Roots: pki.CertPool(anchors), Intermediates: pki.CertPool(chain),
			KeyUsages: []x509.ExtKeyUsage{usage},
		})
		if err != nil {
			t.Fatalf("verify leaf for %v: %v", usage, err)
		}
	}
	if !slices.Equal(leaf.DNSNames, []string{name}) {
		t.Fatalf("leaf DNS names %q, want [%q]", leaf.DNSNames, name)
	}
	if !resp.GetNotAfter().AsTime().Equal(leaf.NotAfter) {
		t.Fatalf("not_after %s, leaf NotAfter %s", resp.GetNotAfter().AsTime(), leaf.NotAfter)
	}
	return leaf
}

func TestCertifySuccess(t *testing.T) {
	f := newFixture(t, true)
	start := time.Now()
	resp, err := f.client.Certify(context.Background(), &identityv1.CertifyRequest{
		Identity: webID, Token: f.token(t, "web", "emojivoto"), CsrDer: goodCSR(t, webID),
	})
	if err != nil {
		t.Fatalf("Certify: %v", err)
	}
	leaf := verifyResponse(t, resp, []*x509.Certificate{f.anchor.Cert}, webID)
	if len(resp.GetChainDer()) != 1 || !slices.Equal(resp.GetChainDer()[0], f.issuer.Cert.Raw) {
		t.Fatalf("chain has %d certificates, want exactly the issuer", len(resp.GetChainDer()))
	}
	// Lifetime is capped by the 1h test issuer; test the skew and cap.
	if d := start.Add(-20 * time.Second).Sub(leaf.NotBefore); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("NotBefore %s is not backdated by 20s from %s", leaf.NotBefore, start)
	}
	if !leaf.NotAfter.Equal(f.issuer.Cert.NotAfter) {
		t.Errorf("NotAfter %s, want capped at issuer expiry %s", leaf.NotAfter, f.issuer.Cert.NotAfter)
	}
	if got := counter(t, f.reg, "identity_cert_issued_total"); got != 1 {
		t.Errorf("identity_cert_issued_total = %v, want 1", got)
	}
	if got := counter(t, f.reg, "identity_issuer_expiry_timestamp_seconds"); got != float64(f.issuer.Cert.NotAfter.Unix()) {
		t.Errorf("identity_issuer_expiry_timestamp_seconds = %v, want %d", got, f.issuer.Cert.NotAfter.Unix())
	}
}

func TestCertifyLifetime(t *testing.T) {
	// With a long-lived issuer the configured lifetime applies.
	anchor, _ := pki.NewCA("root", pki.DefaultAnchorLifetime)
	iss, _ := anchor.NewIssuer(identity.IssuerName(controlNS, trustDomain), pki.DefaultIssuerLifetime)
	tests := []struct {
		lifetime, skew time.Duration
	}{
		{24 * time.Hour, 20 * time.Second},
		{time.Hour, 0},
		{48 * time.Hour, time.Minute},
	}
	for _, tt := range tests {
		f := newFixture(t, false, func(c *ctlidentity.Config) {
			c.IssuanceLifetime, c.ClockSkewAllowance = tt.lifetime, tt.skew
		})
		f.server.SetIssuer(iss)
		start := time.Now()
		resp, err := f.client.Certify(context.Background(), &identityv1.CertifyRequest{
			Identity: webID, Token: f.token(t, "web", "emojivoto"), CsrDer: goodCSR(t, webID),
		})
		if err != nil {
			t.Fatalf("Certify: %v", err)
		}
		leaf := verifyResponse(t, resp, []*x509.Certificate{anchor.Cert}, webID)
		if d := leaf.NotAfter.Sub(start.Add(tt.lifetime)); d < -2*time.Second || d > 2*time.Second {
			t.Errorf("lifetime %s: NotAfter %s, want %s", tt.lifetime, leaf.NotAfter, start.Add(tt.lifetime))
		}
		if d := leaf.NotBefore.Sub(start.Add(-tt.skew)); d < -2*time.Second || d > 2*time.Second {
			t.Errorf("skew %s: NotBefore %s, want %s", tt.skew, leaf.NotBefore, start.Add(-tt.skew))
		}
	}
}

// fakeValidator returns a fixed answer.
type fakeValidator struct {
	id  string
	err error
}

func (v fakeValidator) Validate(context.Context, []byte) (string, error) { return v.id, v.err }

func TestCertifyRefusals(t *testing.T) {
	f := newFixture(t, true)
	noIssuer := newFixture(t, false)
	expired := newFixture(t, false)
	expIss, err := expired.anchor.NewIssuerWithValidity(identity.IssuerName(controlNS, trustDomain),
		pki.Validity{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	expired.server.SetIssuer(expIss)
	unavailable := newFixture(t, true, func(c *ctlidentity.Config) {
		c.Validator = fakeValidator{err: errors.New("API server unreachable")}
	})

	tok := f.token(t, "web", "emojivoto")
	otherTok := f.token(t, "api", "emojivoto")
	otherID := identity.Name("api", "emojivoto", controlNS, trustDomain)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	key := p256(t)
	badSig := goodCSR(t, webID)
	badSig[len(badSig)-1] ^= 0xff
	u, _ := url.Parse("spiffe://cluster.local/ns/emojivoto/sa/web")
	foreignTokens := &localtoken.Issuer{Key: []byte("a different key of at least 32 bytes")}
	foreignTok, err := foreignTokens.Issue("web", "emojivoto", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		f      *fixture
		req    *identityv1.CertifyRequest
		code   codes.Code
		reason string
	}{
		{"missing identity", f, &identityv1.CertifyRequest{Token: tok, CsrDer: goodCSR(t, webID)}, codes.InvalidArgument, ctlidentity.ReasonInvalidRequest},
		{"missing token", f, &identityv1.CertifyRequest{Identity: webID, CsrDer: goodCSR(t, webID)}, codes.InvalidArgument, ctlidentity.ReasonInvalidRequest},
		{"missing CSR", f, &identityv1.CertifyRequest{Identity: webID, Token: tok}, codes.InvalidArgument, ctlidentity.ReasonInvalidRequest},
		{"identity outside the mesh", f, &identityv1.CertifyRequest{Identity: "web.emojivoto.serviceaccount.identity.linkerd.example.org", Token: tok,
			CsrDer: goodCSR(t, "web.emojivoto.serviceaccount.identity.linkerd.example.org")}, codes.InvalidArgument, ctlidentity.ReasonInvalidIdentity},
		{"CSR not DER", f, &identityv1.CertifyRequest{Identity: webID, Token: tok, CsrDer: []byte("-----BEGIN CERTIFICATE REQUEST-----")}, codes.InvalidArgument, ctlidentity.ReasonMalformedCSR},
		{"CSR bad signature", f, &identityv1.CertifyRequest{Identity: webID, Token: tok, CsrDer: badSig}, codes.InvalidArgument, ctlidentity.ReasonMalformedCSR},
		{"RSA key", f, &identityv1.CertifyRequest{Identity: webID, Token: tok,
			CsrDer: csrDER(t, rsaKey, &x509.CertificateRequest{DNSNames: []string{webID}})}, codes.InvalidArgument, ctlidentity.ReasonUnsupportedKey},
		{"P-384 key", f, &identityv1.CertifyRequest{Identity: webID, Token: tok,
			CsrDer: csrDER(t, p384, &x509.CertificateRequest{DNSNames: []string{webID}})}, codes.InvalidArgument, ctlidentity.ReasonUnsupportedKey},
		{"CSR for another name", f, &identityv1.CertifyRequest{Identity: webID, Token: tok, CsrDer: goodCSR(t, otherID)}, codes.FailedPrecondition, ctlidentity.ReasonCSRMismatch},
		{"extra DNS SAN", f, &identityv1.CertifyRequest{Identity: webID, Token: tok,
			CsrDer: csrDER(t, key, &x509.CertificateRequest{DNSNames: []string{webID, "evil.example.com"}})}, codes.FailedPrecondition, ctlidentity.ReasonCSRMismatch},
		{"no SAN", f, &identityv1.CertifyRequest{Identity: webID, Token: tok,
			CsrDer: csrDER(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: webID}})}, codes.FailedPrecondition, ctlidentity.ReasonCSRMismatch},
		{"IP SAN", f, &identityv1.CertifyRequest{Identity: webID, Token: tok,
			CsrDer: csrDER(t, key, &x509.CertificateRequest{DNSNames: []string{webID}, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}})}, codes.FailedPrecondition, ctlidentity.ReasonCSRMismatch},
		{"e-mail SAN", f, &identityv1.CertifyRequest{Identity: webID, Token: tok,
			CsrDer: csrDER(t, key, &x509.CertificateRequest{DNSNames: []string{webID}, EmailAddresses: []string{"a@b.c"}})}, codes.FailedPrecondition, ctlidentity.ReasonCSRMismatch},
		{"URI SAN", f, &identityv1.CertifyRequest{Identity: webID, Token: tok,
			CsrDer: csrDER(t, key, &x509.CertificateRequest{DNSNames: []string{webID}, URIs: []*url.URL{u}})}, codes.FailedPrecondition, ctlidentity.ReasonCSRMismatch},
		{"common name differs", f, &identityv1.CertifyRequest{Identity: webID, Token: tok,
			CsrDer: csrDER(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: otherID}, DNSNames: []string{webID}})}, codes.FailedPrecondition, ctlidentity.ReasonCSRMismatch},
		{"bad token", f, &identityv1.CertifyRequest{Identity: webID, Token: []byte("not-a-token"), CsrDer: goodCSR(t, webID)}, codes.Unauthenticated, ctlidentity.ReasonTokenRejected},
		{"token from another key", f, &identityv1.CertifyRequest{Identity: webID, Token: foreignTok, CsrDer: goodCSR(t, webID)}, codes.Unauthenticated, ctlidentity.ReasonTokenRejected},
		{"token for another service account", f, &identityv1.CertifyRequest{Identity: webID, Token: otherTok, CsrDer: goodCSR(t, webID)}, codes.FailedPrecondition, ctlidentity.ReasonTokenMismatch},
		{"token cannot be checked", unavailable, &identityv1.CertifyRequest{Identity: webID, Token: tok, CsrDer: goodCSR(t, webID)}, codes.Unavailable, ctlidentity.ReasonTokenCheckFailed},
		{"no issuer", noIssuer, &identityv1.CertifyRequest{Identity: webID, Token: noIssuer.token(t, "web", "emojivoto"), CsrDer: goodCSR(t, webID)}, codes.Unavailable, ctlidentity.ReasonNoIssuer},
		{"expired issuer", expired, &identityv1.CertifyRequest{Identity: webID, Token: expired.token(t, "web", "emojivoto"), CsrDer: goodCSR(t, webID)}, codes.Unavailable, ctlidentity.ReasonSigningFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counter(t, tt.f.reg, "identity_cert_refused_total", "reason", tt.reason)
			issuedBefore := counter(t, tt.f.reg, "identity_cert_issued_total")
			resp, err := tt.f.client.Certify(context.Background(), tt.req)
			if err == nil {
				t.Fatalf("Certify succeeded: leaf of %d bytes", len(resp.GetLeafDer()))
			}
			if got := status.Code(err); got != tt.code {
				t.Fatalf("Certify error %v: code %s, want %s", err, got, tt.code)
			}
			if status.Convert(err).Message() == "" {
				t.Error("error has no message")
			}
			if got := counter(t, tt.f.reg, "identity_cert_refused_total", "reason", tt.reason); got != before+1 {
				t.Errorf("identity_cert_refused_total{reason=%q} = %v, want %v", tt.reason, got, before+1)
			}
			if logs := tt.f.logs.String(); !strings.Contains(logs, "reason="+tt.reason) {
				t.Errorf("no log line with reason=%s in:\n%s", tt.reason, logs)
			}
			if got := counter(t, tt.f.reg, "identity_cert_issued_total"); got != issuedBefore {
				t.Errorf("identity_cert_issued_total changed to %v", got)
			}
		})
	}
}

func TestReady(t *testing.T) {
	f := newFixture(t, false)
	if f.server.Ready() || f.server.Issuer() != nil {
		t.Fatal("ready without an issuer")
	}
	f.server.SetIssuer(f.issuer)
	if !f.server.Ready() || !pki.SameCertificate(f.server.Issuer().Cert, f.issuer.Cert) {
		t.Fatal("not ready with an issuer")
	}
	expIss, err := f.anchor.NewIssuerWithValidity("x", pki.Validity{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	f.server.SetIssuer(expIss)
	if f.server.Ready() {
		t.Fatal("ready with an expired issuer")
	}
}

func TestNewServerConfig(t *testing.T) {
	v := fakeValidator{}
	tests := []struct {
		name string
		cfg  ctlidentity.Config
		ok   bool
	}{
		{"minimal", ctlidentity.Config{Validator: v}, true},
		{"full", ctlidentity.Config{Validator: v, TrustDomain: "cluster.local", ControllerNamespace: "linkerd"}, true},
		{"no validator", ctlidentity.Config{}, false},
		{"trust domain only", ctlidentity.Config{Validator: v, TrustDomain: "cluster.local"}, false},
		{"bad trust domain", ctlidentity.Config{Validator: v, TrustDomain: "Cluster..local", ControllerNamespace: "linkerd"}, false},
		{"bad namespace", ctlidentity.Config{Validator: v, TrustDomain: "cluster.local", ControllerNamespace: "l.d"}, false},
		{"negative lifetime", ctlidentity.Config{Validator: v, IssuanceLifetime: -time.Second}, false},
		{"negative skew", ctlidentity.Config{Validator: v, ClockSkewAllowance: -time.Second}, false},
	}
	for _, tt := range tests {
		_, err := ctlidentity.NewServer(tt.cfg)
		if (err == nil) != tt.ok {
			t.Errorf("%s: NewServer error %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestCertifyConcurrent(t *testing.T) {
	// Many proxies at once, each for its own identity.
	f := newFixture(t, true)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sa := "sa-" + string(rune('a'+i))
			id := identity.Name(sa, "ns", controlNS, trustDomain)
			tok, err := f.tokens.Issue(sa, "ns", time.Minute)
			if err != nil {
				errs <- err
				return
			}
			key, err := pki.GenerateKey()
			if err != nil {
				errs <- err
				return
			}
			der, err := pki.MakeCSR(key, id)
			if err != nil {
				errs <- err
				return
			}
			if _, err := f.client.Certify(context.Background(), &identityv1.CertifyRequest{Identity: id, Token: tok, CsrDer: der}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := counter(t, f.reg, "identity_cert_issued_total"); got != n {
		t.Errorf("issued %v, want %d", got, n)
	}
}
