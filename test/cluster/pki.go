package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pkiFiles are the PEM files the API server is started with, plus the
// admin client credentials.
type pkiFiles struct {
	CACert       string // CA certificate (file)
	ServingCert  string // API server serving certificate (file)
	ServingKey   string
	SAPublicKey  string // service-account token verification key (file)
	SASigningKey string // service-account token signing key (file)

	CAPEM, AdminCertPEM, AdminKeyPEM []byte
}

// certLifetime bounds every certificate; a test run never comes close.
const certLifetime = 24 * time.Hour

// certAuthority is a test CA that issues ECDSA P-256 leaf certificates.
type certAuthority struct {
	cert            *x509.Certificate
	key             *ecdsa.PrivateKey
	certPEM, keyPEM []byte
	now             time.Time
}

// newCA generates a self-signed CA called cn.
func newCA(cn string) (*certAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, der, err := sign(tmpl, nil, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	keyPEM, err := ecKeyPEM(key)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	return &certAuthority{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  keyPEM,
		now:     now,
	}, nil
}

// issue signs a leaf certificate for tmpl (subject, SANs, extended key
// usage) with a fresh key.
func (ca *certAuthority) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.NotBefore, tmpl.NotAfter = ca.now.Add(-time.Hour), ca.now.Add(certLifetime)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	_, der, err := sign(tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = ecKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// serviceAccountKeys generates the ES256 key pair that signs and verifies
// service-account tokens.
func serviceAccountKeys() (privPEM, pubPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("service-account key: %w", err)
	}
	privPEM, err = ecKeyPEM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("service-account key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("service-account public key: %w", err)
	}
	return privPEM, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}

// apiServerSANs are the names every API server certificate carries.
var apiServerSANs = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}

// writePKI generates an ECDSA P-256 CA, a serving certificate for
// 127.0.0.1 and localhost, an admin client certificate in the
// system:masters group and an ES256 service-account key pair, and writes
// them under dir.
func writePKI(dir string) (*pkiFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki dir: %w", err)
	}
	ca, err := newCA("l5d-test-cluster-ca")
	if err != nil {
		return nil, err
	}
	servingCert, servingKey, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    apiServerSANs,
	})
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	adminCert, adminKey, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "l5d-test-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("admin certificate: %w", err)
	}
	saPriv, saPub, err := serviceAccountKeys()
	if err != nil {
		return nil, err
	}

	p := &pkiFiles{
		CACert:       filepath.Join(dir, "ca.crt"),
		ServingCert:  filepath.Join(dir, "apiserver.crt"),
		ServingKey:   filepath.Join(dir, "apiserver.key"),
		SAPublicKey:  filepath.Join(dir, "sa.pub"),
		SASigningKey: filepath.Join(dir, "sa.key"),
		CAPEM:        ca.certPEM,
		AdminCertPEM: adminCert,
		AdminKeyPEM:  adminKey,
	}
	err = writeFiles(map[string][]byte{
		p.CACert:       p.CAPEM,
		p.ServingCert:  servingCert,
		p.ServingKey:   servingKey,
		p.SAPublicKey:  saPub,
		p.SASigningKey: saPriv,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// writeFiles writes each file, readable by the owner only.
func writeFiles(files map[string][]byte) error {
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) (*x509.Certificate, []byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("creating certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing certificate: %w", err)
	}
	return cert, der, nil
}

func ecKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshalling EC key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}
