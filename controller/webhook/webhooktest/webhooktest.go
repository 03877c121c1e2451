// Package webhooktest helps test admission webhooks: a serving certificate
// on disk, a webhook served on 127.0.0.1 for the length of a test, and
// AdmissionReviews posted to it.
package webhooktest

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
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Cert is a webhook serving certificate on disk, signed by its own CA.
type Cert struct {
	CertFile, KeyFile string         // tls.crt and tls.key, as in a mounted Secret
	CAPEM             []byte         // the CA: a webhook configuration's caBundle
	Pool              *x509.CertPool // trusts the CA
}

// WriteServingCert writes to dir (as tls.crt and tls.key, replacing any
// previous pair) a certificate for 127.0.0.1 and localhost with the common
// name cn, signed by a new CA.
func WriteServingCert(t testing.TB, dir, cn string) *Cert {
	t.Helper()
	now := time.Now()
	caKey, caDER := newCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn + " CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, der := newCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cert{
		CertFile: filepath.Join(dir, "tls.crt"),
		KeyFile:  filepath.Join(dir, "tls.key"),
		CAPEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Pool:     x509.NewCertPool(),
	}
	c.Pool.AddCert(ca)
	write(t, c.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	write(t, c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return c
}

// newCert signs tmpl with a new key, by parent (nil: self-signed).
func newCert(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Client returns an HTTPS client trusting the certificate's CA; its idle
// connections are closed when the test ends.
func (c *Cert) Client(t testing.TB) *http.Client {
	t.Helper()
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.Pool, MinVersion: tls.VersionTLS12}},
		Timeout:   20 * time.Second,
	}
	t.Cleanup(client.CloseIdleConnections)
	return client
}

// Serve runs serve on a listener on 127.0.0.1 until the test ends, then
// cancels its context and waits (at most 15 s) for it to return, which
// must be without an error. It returns the listener's address.
func Serve(t testing.TB, serve func(ctx context.Context, lis net.Listener) error) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serving the webhook: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("the webhook did not stop within 15s of cancellation")
		}
	})
	return lis.Addr().String()
}

// Review encodes an AdmissionReview (admission.k8s.io/v1) of req.
func Review(t testing.TB, req *admissionv1.AdmissionRequest) []byte {
	t.Helper()
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Request:  req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Post posts body to url and returns the HTTP status, the decoded
// AdmissionReview (nil unless the status is 200) and the raw response. A
// 200 answer that is not an AdmissionReview with a response fails the test.
func Post(t testing.TB, client *http.Client, url string, body []byte) (int, *admissionv1.AdmissionReview, string) {
	t.Helper()
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, string(data)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("response %s: %v", data, err)
	}
	if out.APIVersion != admissionv1.SchemeGroupVersion.String() || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("response is not an AdmissionReview: %s", data)
	}
	return resp.StatusCode, &out, string(data)
}

// Admit posts body to url and returns the response, failing the test
// unless the webhook answered it with HTTP 200.
func Admit(t testing.TB, client *http.Client, url string, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	code, out, raw := Post(t, client, url, body)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, raw)
	}
	return out.Response
}
