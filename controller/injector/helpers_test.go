package injector_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd/controller/injector"
)

// servingCert writes a CA and a certificate for 127.0.0.1 signed by it to
// dir, and returns the CA in PEM and the cert and key paths.
func servingCert(t *testing.T, dir string) (caPEM []byte, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "injector-test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "linkerd-proxy-injector.linkerd.svc"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certFile, keyFile
}

// runningInjector is an injector serving HTTPS on 127.0.0.1.
type runningInjector struct {
	URL   string // https://127.0.0.1:PORT
	CAPEM []byte
	Pool  *x509.CertPool
}

// startInjector runs the real webhook server until the test ends.
func startInjector(t *testing.T, client kubernetes.Interface, controllerNS string) *runningInjector {
	t.Helper()
	caPEM, certFile, keyFile := servingCert(t, t.TempDir())
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	certs, err := injector.NewCertLoader(certFile, keyFile, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := injector.New(injector.Config{Client: client, ControllerNamespace: controllerNS, CreatedBy: "linkerd/proxy-injector test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ctx, lis, certs.TLSConfig()); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &runningInjector{URL: "https://" + lis.Addr().String(), CAPEM: caPEM, Pool: pool}
}

func (r *runningInjector) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: r.Pool, MinVersion: tls.VersionTLS12}
}

// testWriter sends log output to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func trustAnchors(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../pkg/inject/testdata/trust-anchors.pem")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
