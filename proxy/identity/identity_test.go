package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/linkerd-go/linkerd/internal/testkit"
	identityv1 "github.com/linkerd-go/linkerd/proto/identity/v1"
	"github.com/linkerd-go/linkerd/proxy/config"
	"github.com/linkerd-go/linkerd/proxy/metrics"
)

// fakeCA is a minimal identity service for the client's tests.
type fakeCA struct {
	identityv1.UnimplementedIdentityServer
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	lifetime time.Duration
	calls    atomic.Int32
	wrongKey bool
}

func newFakeCA(t *testing.T, lifetime time.Duration) *fakeCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test anchor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &fakeCA{cert: cert, key: key, lifetime: lifetime}
}

func (ca *fakeCA) anchorsPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
}

func (ca *fakeCA) Certify(_ context.Context, req *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
	ca.calls.Add(1)
	if string(req.Token) != "good-token" {
		return nil, status.Error(codes.Unauthenticated, "bad token")
	}
	csr, err := x509.ParseCertificateRequest(req.CsrDer)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	pub := csr.PublicKey
	if ca.wrongKey {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pub = &k.PublicKey
	}
	notAfter := time.Now().Add(ca.lifetime)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), DNSNames: csr.DNSNames,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca.cert, pub, ca.key)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &identityv1.CertifyResponse{LeafDer: der, NotAfter: timestamppb.New(notAfter)}, nil
}

func serve(t *testing.T, ca *fakeCA) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	identityv1.RegisterIdentityServer(s, ca)
	go func() { _ = s.Serve(ln) }() // returns at s.Stop
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func newIdentity(t *testing.T, ca *fakeCA, addr, token string) (*Identity, *metrics.Registry) {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	id, err := New(config.Identity{
		Enabled: true, Dir: filepath.Join(dir, "end-entity"), SvcAddr: addr,
		LocalName: "web.demo.serviceaccount.identity.linkerd.cluster.local",
		TokenFile: tokenFile, TrustAnchorsPEM: ca.anchorsPEM(),
		MinRefresh: 200 * time.Millisecond, MaxRefresh: time.Hour,
	}, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return id, reg
}

func run(t *testing.T, id *Identity) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = id.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestCertifyAndRenew(t *testing.T) {
	ca := newFakeCA(t, 2*time.Second) // renews at 70%: ~1.4 s
	id, reg := newIdentity(t, ca, serve(t, ca), "good-token")
	if id.Ready() {
		t.Fatal("ready before certification")
	}
	if _, err := os.Stat(filepath.Join(id.cfg.Dir, "key.p8")); err != nil {
		t.Errorf("key not written to the identity dir: %v", err)
	}
	run(t, id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := id.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	first := id.Certificate()
	if first.Leaf.DNSNames[0] != id.Name() {
		t.Fatalf("certificate for %v", first.Leaf.DNSNames)
	}
	testkit.EventuallyTrue(t, 30*time.Second, "the certificate to be renewed", func() bool { return id.Certificate() != first })
	if n := reg.Counter("identity_cert_refresh_count", nil).Value(); n < 2 {
		t.Errorf("identity_cert_refresh_count = %d, want >= 2", n)
	}
	if exp := reg.Gauge("identity_cert_expiration_timestamp_seconds", nil).Value(); exp < float64(time.Now().Unix()) {
		t.Errorf("expiration gauge %v is in the past", exp)
	}
}

func TestRefusedStaysNotReadyAndRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		token    string
		wrongKey bool
	}{
		{"bad token", "stolen", false},
		{"certificate for another key", "good-token", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newFakeCA(t, time.Hour)
			ca.wrongKey = tc.wrongKey
			id, _ := newIdentity(t, ca, serve(t, ca), tc.token)
			run(t, id)
			// Wait for a retry rather than for a while: not ready after it.
			testkit.EventuallyTrue(t, 10*time.Second, "a second Certify call (a retry)", func() bool { return ca.calls.Load() >= 2 })
			if id.Ready() {
				t.Fatal("ready with a refused certification")
			}
		})
	}
}

func TestForeignAnchors(t *testing.T) {
	ca, other := newFakeCA(t, time.Hour), newFakeCA(t, time.Hour)
	id, _ := newIdentity(t, other, serve(t, ca), "good-token") // trusts other, served by ca
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := id.dial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = id.certify(ctx, identityv1.NewIdentityClient(conn))
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) {
		t.Fatalf("certify with a foreign CA: %v, want an unknown-authority error", err)
	}
}
