package chartstest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/pkg/pki"
)

// Identity is what a user gives `linkerd install` or the control-plane
// chart for the identity service: a trust anchor, an issuer certificate it
// signs and the issuer's key, PEM-encoded.
type Identity struct {
	AnchorsPEM, IssuerCertPEM, IssuerKeyPEM []byte
}

// NewIdentity makes a trust anchor valid for anchorLifetime and an issuer
// valid for issuerLifetime, with the default trust domain's names.
func NewIdentity(anchorLifetime, issuerLifetime time.Duration) (*Identity, error) {
	anchor, err := pki.NewCA("root.linkerd.cluster.local", anchorLifetime)
	if err != nil {
		return nil, fmt.Errorf("trust anchor: %w", err)
	}
	issuer, err := anchor.NewIssuer("identity.linkerd.cluster.local", issuerLifetime)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	key, err := pki.EncodePrivateKeyPEM(issuer.Key)
	if err != nil {
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	return &Identity{
		AnchorsPEM:    pki.EncodeCertificatesPEM(anchor.Cert),
		IssuerCertPEM: pki.EncodeCertificatesPEM(issuer.Cert),
		IssuerKeyPEM:  key,
	}, nil
}

// IdentityFiles are the paths of an Identity written to files.
type IdentityFiles struct {
	Anchors, IssuerCert, IssuerKey string
}

// WriteFiles writes id to dir as ca.crt, issuer.crt and issuer.key.
func (id *Identity) WriteFiles(dir string) (IdentityFiles, error) {
	f := IdentityFiles{
		Anchors:    filepath.Join(dir, "ca.crt"),
		IssuerCert: filepath.Join(dir, "issuer.crt"),
		IssuerKey:  filepath.Join(dir, "issuer.key"),
	}
	for path, data := range map[string][]byte{f.Anchors: id.AnchorsPEM, f.IssuerCert: id.IssuerCertPEM, f.IssuerKey: id.IssuerKeyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return IdentityFiles{}, err
		}
	}
	return f, nil
}

// SetFile returns the --set-file arguments of `helm install` giving the
// files to the control-plane chart, the trust anchors first.
func (f IdentityFiles) SetFile() []string {
	return []string{
		"identityTrustAnchorsPEM=" + f.Anchors,
		"identity.issuer.tls.crtPEM=" + f.IssuerCert,
		"identity.issuer.tls.keyPEM=" + f.IssuerKey,
	}
}

// WriteIdentity makes an Identity (see NewIdentity) and writes it to dir
// (see WriteFiles), failing t on error.
func WriteIdentity(t testing.TB, dir string, anchorLifetime, issuerLifetime time.Duration) (*Identity, IdentityFiles) {
	t.Helper()
	id, err := NewIdentity(anchorLifetime, issuerLifetime)
	if err != nil {
		t.Fatal(err)
	}
	files, err := id.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return id, files
}
