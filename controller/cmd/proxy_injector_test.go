package cmd

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"io"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSignedServing writes a self-signed certificate for 127.0.0.1.
func selfSignedServing(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "proxy-injector-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	mustWrite(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	mustWrite(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestProxyInjectorComponent runs the subcommand's component against an
// unreachable API server: the webhook answers over TLS and admits pods
// unchanged, with a warning.
func TestProxyInjectorComponent(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedServing(t, dir)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	mustWrite(t, kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`))
	fs := flag.NewFlagSet("proxy-injector", flag.ContinueOnError)
	o := &proxyInjectorOptions{}
	o.addFlags(fs)
	if err := fs.Parse([]string{"-addr=127.0.0.1:0", "-admin-addr=127.0.0.1:0", "-tls-cert=" + certFile, "-tls-key=" + keyFile,
		"-kubeconfig=" + kubeconfig, "-controller-namespace=mesh"}); err != nil {
		t.Fatal(err)
	}
	log, err := o.log.logger(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newProxyInjectorComponent(o, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("run did not return within 15s of cancellation")
		}
	})

	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
		"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
		"namespace":"default","operation":"CREATE","object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"x"}]}}}}`
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Post("https://"+c.lis.Addr().String()+"/", "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Response struct {
			UID      string   `json:"uid"`
			Allowed  bool     `json:"allowed"`
			Patch    []byte   `json:"patch"`
			Warnings []string `json:"warnings"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	r := out.Response
	if r.UID != "u1" || !r.Allowed || len(r.Patch) != 0 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "not injected") {
		t.Errorf("response = %+v, want the pod admitted unchanged with a warning", r)
	}

	admin := "http://" + c.adminLis.Addr().String()
	waitReady(t, admin)
	if code, body := httpGet(t, admin+"/metrics"); code != http.StatusOK || !strings.Contains(body, `proxy_inject_admission_responses_total{namespace="default"`) {
		t.Errorf("/metrics = %d, want the injector's metrics:\n%s", code, body)
	}
}

func TestProxyInjectorBadCertificate(t *testing.T) {
	var stderr bytes.Buffer
	code := Execute(context.Background(), []string{"proxy-injector", "-tls-cert=/nonexistent/tls.crt", "-tls-key=/nonexistent/tls.key"},
		Env{Stdout: io.Discard, Stderr: &stderr})
	if code != 2 || !strings.Contains(stderr.String(), "webhook certificate") {
		t.Errorf("exit %d, stderr %q; want 2 and a certificate error", code, stderr.String())
	}
}
