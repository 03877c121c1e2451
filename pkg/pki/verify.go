package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"time"
)

// LoadIssuer parses an issuer's certificate (PEM; the first block is the
// issuer, any further blocks are intermediates towards the anchor) and its
// private key (PEM, PKCS#8 or SEC 1). The key must match the certificate,
// and the certificate must be a CA allowed to sign certificates. LoadIssuer
// does not check validity dates or the chain to a trust anchor; see
// VerifyIssuer.
func LoadIssuer(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := DecodeCertificatesPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("issuer certificate: %w", err)
	}
	key, err := DecodePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	cert := certs[0]
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("issuer certificate %q is not a CA", cert.Subject.CommonName)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("issuer certificate %q may not sign certificates (no certSign key usage)", cert.Subject.CommonName)
	}
	if !keyMatches(cert, key) {
		return nil, fmt.Errorf("issuer key does not match certificate %q", cert.Subject.CommonName)
	}
	return &CA{Cert: cert, Key: key, Intermediates: certs[1:]}, nil
}

func keyMatches(cert *x509.Certificate, key *ecdsa.PrivateKey) bool {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	return ok && pub.Equal(&key.PublicKey)
}

// CertPool returns a pool holding certs.
func CertPool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// VerifyChain checks that leaf chains to one of anchors through
// intermediates and that every certificate is valid now. Any extended key
// usage is accepted.
func VerifyChain(leaf *x509.Certificate, intermediates, anchors []*x509.Certificate) error {
	return VerifyChainAt(leaf, intermediates, anchors, time.Now())
}

// VerifyChainAt is VerifyChain at time now.
func VerifyChainAt(leaf *x509.Certificate, intermediates, anchors []*x509.Certificate, now time.Time) error {
	if len(anchors) == 0 {
		return errors.New("verify certificate chain: no trust anchors")
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         CertPool(anchors),
		Intermediates: CertPool(intermediates),
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("verify certificate %q: %w", leaf.Subject.CommonName, err)
	}
	return nil
}

// VerifyIssuer checks that ca's certificate is valid now and chains, through
// its intermediates, to one of anchors.
func VerifyIssuer(ca *CA, anchors []*x509.Certificate) error {
	return VerifyChain(ca.Cert, ca.Intermediates, anchors)
}

// MakeCSR returns a DER PKCS#10 certificate signing request for key, with
// common name name and exactly one DNS SAN, name. This is what a proxy
// sends to the identity service.
func MakeCSR(key *ecdsa.PrivateKey, name string) ([]byte, error) {
	if name == "" {
		return nil, errors.New("make CSR: empty name")
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: name},
		DNSNames: []string{name},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("make CSR for %q: %w", name, err)
	}
	return der, nil
}

// IsP256 reports whether pub is an ECDSA P-256 public key.
func IsP256(pub any) bool {
	k, ok := pub.(*ecdsa.PublicKey)
	return ok && k.Curve == elliptic.P256()
}

// SameCertificate reports whether a and b are the same certificate.
func SameCertificate(a, b *x509.Certificate) bool {
	return a != nil && b != nil && bytes.Equal(a.Raw, b.Raw)
}
