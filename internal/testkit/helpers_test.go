package testkit

import (
	"crypto/ecdsa"
	"crypto/tls"
	"fmt"
	"testing"

	"github.com/linkerd-go/linkerd/pkg/pki"
)

func sprint(args ...any) string            { return fmt.Sprintln(args...) }
func sprintf(f string, args ...any) string { return fmt.Sprintf(f, args...) }

func mustKeyPEM(t *testing.T, c tls.Certificate) []byte {
	t.Helper()
	b, err := pki.EncodePrivateKeyPEM(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
