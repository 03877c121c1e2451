package testkit

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/pki"
)

// Mesh names the tests' PKI uses unless told otherwise.
const (
	ControlPlaneNamespace = "linkerd"
	TrustDomain           = "cluster.local"
)

// MeshCA is a throwaway mesh PKI: a trust anchor and the identity issuer it
// signed, named as Linkerd names them.
type MeshCA struct {
	Anchor *pki.CA
	Issuer *pki.CA
}

// NewMeshCA creates a trust anchor and an issuer for the linkerd control
// plane in cluster.local, both valid for lifetime.
func NewMeshCA(t testing.TB, lifetime time.Duration) *MeshCA {
	t.Helper()
	anchor, err := pki.NewCA(identity.TrustAnchorName(ControlPlaneNamespace, TrustDomain), lifetime)
	if err != nil {
		t.Fatalf("trust anchor: %v", err)
	}
	return &MeshCA{Anchor: anchor, Issuer: NewIssuer(t, anchor, lifetime)}
}

// NewIssuer creates an identity issuer signed by anchor, valid for lifetime.
func NewIssuer(t testing.TB, anchor *pki.CA, lifetime time.Duration) *pki.CA {
	t.Helper()
	issuer, err := anchor.NewIssuer(identity.IssuerName(ControlPlaneNamespace, TrustDomain), lifetime)
	if err != nil {
		t.Fatalf("issuer: %v", err)
	}
	return issuer
}

// AnchorsPEM returns the trust anchor as a PEM bundle, as proxies read it.
func (m *MeshCA) AnchorsPEM() []byte { return pki.EncodeCertificatesPEM(m.Anchor.Cert) }

// Pool returns the trust anchor as a certificate pool.
func (m *MeshCA) Pool() *x509.CertPool { return pki.CertPool([]*x509.Certificate{m.Anchor.Cert}) }

// WriteIssuer writes the issuer as the identity service reads it in dir, in
// the given scheme's layout (identity.IssuerSchemeLinkerd: crt.pem and
// key.pem; identity.IssuerSchemeKubernetes: tls.crt and tls.key), and the
// trust anchors as dir/ca-bundle.crt, whose path it returns.
func (m *MeshCA) WriteIssuer(t testing.TB, dir, scheme string) string {
	t.Helper()
	return WriteIssuer(t, m.Issuer, m.Anchor, dir, scheme)
}

// WriteIssuer is MeshCA.WriteIssuer for any issuer and anchor.
func WriteIssuer(t testing.TB, issuer, anchor *pki.CA, dir, scheme string) string {
	t.Helper()
	crt, key := "crt.pem", "key.pem"
	if scheme == identity.IssuerSchemeKubernetes {
		crt, key = "tls.crt", "tls.key"
	}
	keyPEM, err := pki.EncodePrivateKeyPEM(issuer.Key)
	if err != nil {
		t.Fatalf("issuer key: %v", err)
	}
	anchors := filepath.Join(dir, "ca-bundle.crt")
	for name, data := range map[string][]byte{
		crt:     pki.EncodeCertificatesPEM(issuer.Chain()...),
		key:     keyPEM,
		anchors: pki.EncodeCertificatesPEM(anchor.Cert),
	} {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return anchors
}

// Leaf issues a certificate for the mesh identity name (a DNS SAN), valid
// for lifetime, as a tls.Certificate carrying the issuer chain.
func (m *MeshCA) Leaf(t testing.TB, name string, lifetime time.Duration) tls.Certificate {
	t.Helper()
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	csrDER, err := pki.MakeCSR(key, name)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := m.Issuer.SignCSR(csr, lifetime, 0)
	if err != nil {
		t.Fatalf("signing a certificate for %s: %v", name, err)
	}
	chain := [][]byte{cert.Raw}
	for _, c := range m.Issuer.Chain() {
		chain = append(chain, c.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: cert}
}
