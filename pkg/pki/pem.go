package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM block types.
const (
	pemCertificate  = "CERTIFICATE"
	pemPrivateKey   = "PRIVATE KEY"    // PKCS#8
	pemECPrivateKey = "EC PRIVATE KEY" // SEC 1
	pemCSR          = "CERTIFICATE REQUEST"
)

// EncodeCertificatesPEM returns certs as a PEM bundle, in order.
func EncodeCertificatesPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: c.Raw})...)
	}
	return out
}

// DecodeCertificatesPEM parses every block of a PEM bundle. All blocks must
// be certificates, and there must be at least one. Text between blocks is
// ignored.
func DecodeCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != pemCertificate {
			return nil, fmt.Errorf("PEM block %d: type %q, want %q", len(certs)+1, block.Type, pemCertificate)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// DecodeCertificatePEM parses a PEM file holding exactly one certificate.
func DecodeCertificatePEM(data []byte) (*x509.Certificate, error) {
	certs, err := DecodeCertificatesPEM(data)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("found %d PEM certificates, want 1", len(certs))
	}
	return certs[0], nil
}

// MarshalPrivateKeyDER returns key in PKCS#8 DER form (the proxy's key.p8).
func MarshalPrivateKeyDER(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal PKCS#8 private key: %w", err)
	}
	return der, nil
}

// ParsePrivateKeyDER parses a PKCS#8 DER private key, which must be ECDSA
// P-256.
func ParsePrivateKeyDER(der []byte) (*ecdsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8 private key: %w", err)
	}
	return requireP256(k)
}

// EncodePrivateKeyPEM returns key as a PKCS#8 "PRIVATE KEY" PEM block.
func EncodePrivateKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := MarshalPrivateKeyDER(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// DecodePrivateKeyPEM parses the first PEM block of data as an ECDSA P-256
// private key, either PKCS#8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY", as
// written by step, cert-manager and openssl ecparam).
func DecodePrivateKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		switch block.Type {
		case pemPrivateKey:
			return ParsePrivateKeyDER(block.Bytes)
		case pemECPrivateKey:
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse EC private key: %w", err)
			}
			return requireP256(k)
		case "EC PARAMETERS":
			// openssl ecparam -genkey writes the curve first; skip it.
			continue
		default:
			return nil, fmt.Errorf("PEM block type %q is not a private key", block.Type)
		}
	}
}

// EncodeCSRPEM returns a DER certificate signing request as PEM.
func EncodeCSRPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der})
}

func requireP256(k any) (*ecdsa.PrivateKey, error) {
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want ECDSA P-256", k)
	}
	if ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("private key curve is %s, want P-256", ec.Curve.Params().Name)
	}
	return ec, nil
}
