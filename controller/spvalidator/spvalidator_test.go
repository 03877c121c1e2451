package spvalidator

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
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/controller/webhook"
)

// servingCert writes a self-signed certificate for 127.0.0.1 into dir.
func servingCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sp-validator-test"},
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
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// startServer serves the validator over TLS on 127.0.0.1 until the test
// ends, and returns its URL and a client trusting it.
func startServer(t *testing.T) (string, *http.Client) {
	t.Helper()
	certFile, keyFile, pool := servingCert(t, t.TempDir())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	certs, err := webhook.NewCertLoader(certFile, keyFile, log)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(log).Serve(ctx, lis, certs.TLSConfig()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		Timeout:   10 * time.Second,
	}
	t.Cleanup(client.CloseIdleConnections)
	return "https://" + lis.Addr().String(), client
}

// review builds an AdmissionReview of a ServiceProfile given as YAML.
func review(t *testing.T, op admissionv1.Operation, resource metav1.GroupVersionResource, doc string) []byte {
	t.Helper()
	obj, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("uid-" + string(op)),
			Kind:      metav1.GroupVersionKind{Group: "linkerd.io", Version: "v1alpha2", Kind: "ServiceProfile"},
			Resource:  resource,
			Name:      "web.emojivoto.svc.cluster.local",
			Namespace: "emojivoto",
			Operation: op,
			Object:    runtime.RawExtension{Raw: obj},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t *testing.T, client *http.Client, url string, body []byte) (int, *admissionv1.AdmissionReview, string) {
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
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("response is not an AdmissionReview: %s", data)
	}
	return resp.StatusCode, &out, string(data)
}

var spResource = metav1.GroupVersionResource{Group: "linkerd.io", Version: "v1alpha2", Resource: "serviceprofiles"}

const goodProfile = `apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web.emojivoto.svc.cluster.local, namespace: emojivoto}
spec:
  routes:
  - name: GET /api/list
    condition: {method: GET, pathRegex: /api/list}
    responseClasses: [{condition: {status: {min: 500, max: 599}}, isFailure: true}]
    timeout: 1s
`

const badProfile = `apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web.emojivoto.svc.cluster.local, namespace: emojivoto}
spec:
  routes:
  - name: GET /api/list
    condition: {method: GET}
  - name: vote
    condition: {pathRegex: '/api/vote/(.*'}
`

func TestServeReviews(t *testing.T) {
	url, client := startServer(t)
	other := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	for _, tc := range []struct {
		name     string
		op       admissionv1.Operation
		resource metav1.GroupVersionResource
		doc      string
		allowed  bool
		message  string
	}{
		{"valid profile created", admissionv1.Create, spResource, goodProfile, true, ""},
		{"valid profile updated", admissionv1.Update, spResource, goodProfile, true, ""},
		{"invalid profile created", admissionv1.Create, spResource, badProfile, false,
			`ServiceProfile "web.emojivoto.svc.cluster.local" is invalid: spec.routes[1].condition.pathRegex: error parsing regexp: missing closing ): ` + "`/api/vote/(.*`"},
		{"invalid profile updated", admissionv1.Update, spResource, badProfile, false, "spec.routes[1].condition.pathRegex"},
		{"unknown field", admissionv1.Create, spResource, strings.Replace(goodProfile, "timeout: 1s", "timeout: 1s\n    retries: 3", 1), false,
			"spec.routes[0].retries: unknown field"},
		{"invalid profile deleted", admissionv1.Delete, spResource, badProfile, true, ""},
		{"another resource", admissionv1.Create, other, badProfile, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, raw := post(t, client, url+"/", review(t, tc.op, tc.resource, tc.doc))
			if code != http.StatusOK {
				t.Fatalf("HTTP %d: %s", code, raw)
			}
			resp := out.Response
			if resp.UID != types.UID("uid-"+string(tc.op)) {
				t.Errorf("response UID %q, want the request's", resp.UID)
			}
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v: %s", resp.Allowed, tc.allowed, raw)
			}
			if tc.allowed {
				if resp.Result != nil && resp.Result.Message != "" {
					t.Errorf("allowed with a message: %s", raw)
				}
				return
			}
			if resp.Result == nil || resp.Result.Code != http.StatusUnprocessableEntity || resp.Result.Reason != metav1.StatusReasonInvalid {
				t.Errorf("denial result %+v, want 422 Invalid", resp.Result)
			}
			if resp.Result != nil && !strings.Contains(resp.Result.Message, tc.message) {
				t.Errorf("message %q does not contain %q", resp.Result.Message, tc.message)
			}
		})
	}
}

func TestServeBadRequests(t *testing.T) {
	url, client := startServer(t)
	for _, tc := range []struct {
		name, path string
		body       string
		want       int
	}{
		{"not JSON", "/", "{", http.StatusBadRequest},
		{"no request", "/", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest},
		{"other path", "/inject", `{}`, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, raw := post(t, client, url+tc.path, []byte(tc.body)); code != tc.want {
				t.Errorf("HTTP %d (%s), want %d", code, raw, tc.want)
			}
		})
	}
	resp, err := client.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: HTTP %d, want 405", resp.StatusCode)
	}

	// A body that is not a ServiceProfile at all is denied, not a 500.
	body := review(t, admissionv1.Create, spResource, "[1, 2]")
	code, out, raw := post(t, client, url+"/", body)
	if code != http.StatusOK || out.Response.Allowed || !strings.Contains(out.Response.Result.Message, "decoding the ServiceProfile") {
		t.Errorf("a list as the object: HTTP %d: %s", code, raw)
	}
}
