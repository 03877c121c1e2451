// Package pki creates and checks the mesh's certificates: the trust anchor
// (a self-signed root CA), the identity issuer (an intermediate CA signed by
// the anchor) and the short-lived leaf certificates the issuer signs for
// proxies. Every key is ECDSA P-256.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

const (
	// DefaultAnchorLifetime is how long a generated trust anchor is valid.
	DefaultAnchorLifetime = 10 * 365 * 24 * time.Hour
	// DefaultIssuerLifetime is how long a generated issuer is valid.
	DefaultIssuerLifetime = 365 * 24 * time.Hour
	// DefaultLeafLifetime is how long an issued leaf certificate is valid.
	DefaultLeafLifetime = 24 * time.Hour
	// DefaultClockSkew is how far a leaf's NotBefore is backdated to
	// tolerate clocks running behind the issuer's.
	DefaultClockSkew = 20 * time.Second
)

// CA is a certificate authority: a CA certificate, its private key, and the
// certificates (if any) between it and a trust anchor.
type CA struct {
	// Cert is the CA's own certificate.
	Cert *x509.Certificate
	// Key is the private key matching Cert.
	Key *ecdsa.PrivateKey
	// Intermediates are the certificates, nearest first, that link Cert to
	// a trust anchor, not counting Cert and the anchor. Usually empty.
	Intermediates []*x509.Certificate
}

// Validity is a certificate's validity window.
type Validity struct {
	NotBefore time.Time
	NotAfter  time.Time
}

// ValidFor returns a window starting now and lasting lifetime.
func ValidFor(lifetime time.Duration) Validity {
	now := time.Now()
	return Validity{NotBefore: now, NotAfter: now.Add(lifetime)}
}

func (v Validity) check() error {
	if !v.NotAfter.After(v.NotBefore) {
		return fmt.Errorf("validity window [%s, %s] is empty", v.NotBefore.Format(time.RFC3339), v.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// GenerateKey returns a new ECDSA P-256 private key.
func GenerateKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
	}
	return key, nil
}

// NewCA generates a self-signed trust anchor with common name cn, valid
// from now for lifetime.
func NewCA(cn string, lifetime time.Duration) (*CA, error) {
	return NewCAWithValidity(cn, ValidFor(lifetime))
}

// NewCAWithValidity is NewCA with an explicit validity window.
func NewCAWithValidity(cn string, v Validity) (*CA, error) {
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("new CA %q: %w", cn, err)
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", cn, err)
	}
	tmpl, err := caTemplate(cn, v, -1)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", cn, err)
	}
	cert, err := createCertificate(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", cn, err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// NewIssuer generates an intermediate CA with common name cn (for the mesh:
// identity.<control-ns>.<trust-domain>), signed by ca and valid from now for
// lifetime. The issuer may sign leaf certificates only (MaxPathLen 0).
func (ca *CA) NewIssuer(cn string, lifetime time.Duration) (*CA, error) {
	return ca.NewIssuerWithValidity(cn, ValidFor(lifetime))
}

// NewIssuerWithValidity is NewIssuer with an explicit validity window.
func (ca *CA) NewIssuerWithValidity(cn string, v Validity) (*CA, error) {
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("new issuer %q: %w", cn, err)
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("new issuer %q: %w", cn, err)
	}
	tmpl, err := caTemplate(cn, v, 0)
	if err != nil {
		return nil, fmt.Errorf("new issuer %q: %w", cn, err)
	}
	cert, err := createCertificate(tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("new issuer %q: %w", cn, err)
	}
	var chain []*x509.Certificate
	if !isSelfSigned(ca.Cert) {
		chain = append([]*x509.Certificate{ca.Cert}, ca.Intermediates...)
	}
	return &CA{Cert: cert, Key: key, Intermediates: chain}, nil
}

// Chain returns the CA's certificate followed by its intermediates: what a
// leaf's holder presents after the leaf.
func (ca *CA) Chain() []*x509.Certificate {
	return append([]*x509.Certificate{ca.Cert}, ca.Intermediates...)
}

// SignCSR issues a leaf certificate for the subject, SANs and public key of
// csr. The certificate is valid from now minus clockSkew until now plus
// lifetime, but never past the CA's own NotAfter. It may be used for both
// TLS server and client authentication. SignCSR checks the CSR's signature
// but not its names: that is the caller's policy.
func (ca *CA) SignCSR(csr *x509.CertificateRequest, lifetime, clockSkew time.Duration) (*x509.Certificate, error) {
	if lifetime <= 0 {
		return nil, fmt.Errorf("sign CSR: lifetime %s must be positive", lifetime)
	}
	if clockSkew < 0 {
		return nil, fmt.Errorf("sign CSR: clock skew %s must not be negative", clockSkew)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("sign CSR: %w", err)
	}
	now := time.Now()
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	notBefore := now.Add(-clockSkew)
	if !notAfter.After(notBefore) {
		return nil, errors.New("sign CSR: issuer has expired")
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("sign CSR: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: csr.Subject.CommonName},
		DNSNames:              csr.DNSNames,
		IPAddresses:           csr.IPAddresses,
		EmailAddresses:        csr.EmailAddresses,
		URIs:                  csr.URIs,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	cert, err := createCertificate(tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign CSR: %w", err)
	}
	return cert, nil
}

// caTemplate returns a CA certificate template; maxPathLen < 0 means
// unlimited.
func caTemplate(cn string, v Validity, maxPathLen int) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             v.NotBefore,
		NotAfter:              v.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            maxPathLen,
		MaxPathLenZero:        maxPathLen == 0,
	}
	return tmpl, nil
}

func createCertificate(tmpl, parent *x509.Certificate, pub any, signer *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse created certificate: %w", err)
	}
	return cert, nil
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return c.CheckSignatureFrom(c) == nil
}
