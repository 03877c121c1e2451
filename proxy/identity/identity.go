// Package identity gives the proxy its mesh identity: it generates a private
// key, asks the identity service to certify it, and renews the certificate
// before it expires. The current certificate feeds the proxy's mTLS.
package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/linkerd-go/linkerd/pkg/pki"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
	identityv1 "github.com/linkerd-go/linkerd/proto/identity/v1"
	"github.com/linkerd-go/linkerd/proxy/config"
	"github.com/linkerd-go/linkerd/proxy/metrics"
)

// Identity is the proxy's certified identity.
type Identity struct {
	cfg   config.Identity
	name  string
	key   *ecdsa.PrivateKey
	csr   []byte
	roots *x509.CertPool
	log   *slog.Logger

	cert    atomic.Pointer[tls.Certificate]
	ready   chan struct{}
	expiry  *metrics.Gauge
	refresh *metrics.Counter
}

// New generates the key and CSR (written to cfg.Dir when set) and parses the
// trust anchors. Run obtains the certificate.
func New(cfg config.Identity, reg *metrics.Registry, log *slog.Logger) (*Identity, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(cfg.TrustAnchorsPEM)) {
		return nil, fmt.Errorf("%s: no certificate could be parsed", proxyenv.IdentityTrustAnchors)
	}
	key, err := pki.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate identity key: %w", err)
	}
	csr, err := pki.MakeCSR(key, cfg.LocalName)
	if err != nil {
		return nil, err
	}
	if cfg.Dir != "" {
		if err := writeKeyMaterial(cfg.Dir, key, csr); err != nil {
			return nil, err
		}
	}
	return &Identity{
		cfg: cfg, name: cfg.LocalName, key: key, csr: csr, roots: roots,
		log:     log.With("identity", cfg.LocalName),
		ready:   make(chan struct{}),
		expiry:  reg.Gauge("identity_cert_expiration_timestamp_seconds", nil),
		refresh: reg.Counter("identity_cert_refresh_count", nil),
	}, nil
}

func writeKeyMaterial(dir string, key *ecdsa.PrivateKey, csr []byte) error {
	der, err := pki.MarshalPrivateKeyDER(key)
	if err != nil {
		return fmt.Errorf("encode identity key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%s: %w", proxyenv.IdentityDir, err)
	}
	for name, b := range map[string][]byte{"key.p8": der, "csr.der": csr} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return fmt.Errorf("%s: %w", proxyenv.IdentityDir, err)
		}
	}
	return nil
}

// Name is the identity this proxy holds (or asks for).
func (id *Identity) Name() string { return id.name }

// Roots are the trust anchors.
func (id *Identity) Roots() *x509.CertPool { return id.roots }

// Ready reports whether a certificate has been obtained.
func (id *Identity) Ready() bool { return id.cert.Load() != nil }

// WaitReady blocks until the first certificate arrives or ctx ends.
func (id *Identity) WaitReady(ctx context.Context) error {
	select {
	case <-id.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Certificate returns the current certificate (nil before the first one).
func (id *Identity) Certificate() *tls.Certificate { return id.cert.Load() }

// Run certifies the key and renews the certificate at 70% of its lifetime
// (bounded by MinRefresh and MaxRefresh), retrying failures with backoff,
// until ctx ends.
func (id *Identity) Run(ctx context.Context) error {
	conn, err := id.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	client := identityv1.NewIdentityClient(conn)

	backoff := 100 * time.Millisecond
	for {
		wait, err := id.certify(ctx, client)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			id.log.Warn("failed to certify identity; retrying", "err", err, "in", backoff)
			wait = backoff
			backoff = min(2*backoff, 10*time.Second)
		} else {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
	}
}

func (id *Identity) dial() (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if !config.IsLoopbackAddr(id.cfg.SvcAddr) {
		// The identity service proves its own identity against the anchors;
		// we have no certificate to present yet.
		creds = credentials.NewTLS(&tls.Config{
			RootCAs:    id.roots,
			ServerName: id.cfg.SvcName,
			MinVersion: tls.VersionTLS13,
		})
	}
	conn, err := grpc.NewClient(config.DialTarget(id.cfg.SvcAddr), grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("identity service %s: %w", id.cfg.SvcAddr, err)
	}
	return conn, nil
}

// certify asks for a certificate once; it returns when to renew.
func (id *Identity) certify(ctx context.Context, client identityv1.IdentityClient) (time.Duration, error) {
	token, err := os.ReadFile(id.cfg.TokenFile)
	if err != nil {
		return 0, fmt.Errorf("read token: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := client.Certify(ctx, &identityv1.CertifyRequest{Identity: id.name, Token: token, CsrDer: id.csr})
	if err != nil {
		return 0, fmt.Errorf("certify: %w", err)
	}
	cert, err := id.verify(resp)
	if err != nil {
		return 0, err
	}
	first := id.cert.Swap(cert) == nil
	if first {
		close(id.ready)
	}
	id.refresh.Inc()
	notAfter := cert.Leaf.NotAfter
	id.expiry.Set(float64(notAfter.Unix()))
	lifetime := time.Until(notAfter)
	wait := min(max(lifetime*7/10, id.cfg.MinRefresh), id.cfg.MaxRefresh)
	id.log.Info("certified identity", "expires", notAfter.UTC().Format(time.RFC3339), "renew_in", wait.Round(time.Second))
	return wait, nil
}

// verify checks that the response is a certificate for our key and name that
// chains to the trust anchors, and builds the tls.Certificate.
func (id *Identity) verify(resp *identityv1.CertifyResponse) (*tls.Certificate, error) {
	leaf, err := x509.ParseCertificate(resp.GetLeafDer())
	if err != nil {
		return nil, fmt.Errorf("identity service returned a bad certificate: %w", err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(id.key.Public()) {
		return nil, errors.New("identity service returned a certificate for another key")
	}
	inter := x509.NewCertPool()
	chain := [][]byte{leaf.Raw}
	for _, der := range resp.GetChainDer() {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("identity service returned a bad chain: %w", err)
		}
		inter.AddCert(c)
		chain = append(chain, der)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		DNSName: id.name, Roots: id.roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("certificate from the identity service does not verify: %w", err)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: id.key, Leaf: leaf}, nil
}
