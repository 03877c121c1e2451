package webhook

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/controller/webhook/webhooktest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const reviewBody = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","operation":"CREATE"}}`

func serve(h http.Handler, method, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/", strings.NewReader(body)))
	return rec
}

func TestHandler(t *testing.T) {
	denied := &Handler{Log: quiet, Admit: func(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("Admit's context has no deadline")
		}
		return Denied(422, metav1.StatusReasonInvalid, "spec.x: bad")
	}}
	rec := serve(denied, http.MethodPost, reviewBody)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("HTTP %d %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Kind != "AdmissionReview" || out.APIVersion != "admission.k8s.io/v1" || out.Response == nil ||
		out.Response.UID != "u-1" || out.Response.Allowed || out.Response.Result.Message != "spec.x: bad" || out.Response.Result.Code != 422 {
		t.Errorf("response %s", rec.Body)
	}

	for _, tc := range []struct {
		name, method, body string
		want               int
	}{
		{"GET", http.MethodGet, "", http.StatusMethodNotAllowed},
		{"not JSON", http.MethodPost, "nope", http.StatusBadRequest},
		{"no request", http.MethodPost, `{"kind":"AdmissionReview"}`, http.StatusBadRequest},
		{"too large", http.MethodPost, `{"x":"` + strings.Repeat("a", MaxReviewBytes) + `"}`, http.StatusBadRequest},
	} {
		if rec := serve(denied, tc.method, tc.body); rec.Code != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.name, rec.Code, tc.want)
		}
	}
}

func TestHandlerPanics(t *testing.T) {
	boom := func(context.Context, *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse { panic("boom") }
	// Without Panic: HTTP 500, for the API server's failurePolicy.
	if rec := serve(&Handler{Admit: boom, Log: quiet}, http.MethodPost, reviewBody); rec.Code != http.StatusInternalServerError {
		t.Errorf("panic: HTTP %d, want 500", rec.Code)
	}
	// No response is a bug like a panic.
	none := func(context.Context, *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse { return nil }
	if rec := serve(&Handler{Admit: none, Log: quiet}, http.MethodPost, reviewBody); rec.Code != http.StatusInternalServerError {
		t.Errorf("nil response: HTTP %d, want 500", rec.Code)
	}
	// With Panic: its answer.
	h := &Handler{Admit: boom, Log: quiet, Panic: func(_ *admissionv1.AdmissionRequest, p any) *admissionv1.AdmissionResponse {
		return Allowed("recovered: " + p.(string))
	}}
	rec := serve(h, http.MethodPost, reviewBody)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s (%v)", rec.Code, rec.Body, err)
	}
	if !out.Response.Allowed || out.Response.UID != "u-1" || len(out.Response.Warnings) != 1 || out.Response.Warnings[0] != "recovered: boom" {
		t.Errorf("response %s", rec.Body)
	}
}

func commonName(t *testing.T, l *CertLoader) string {
	t.Helper()
	c, err := l.GetCertificate(nil)
	if err != nil || c == nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

func TestCertLoader(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewCertLoader(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), quiet); err == nil {
		t.Fatal("NewCertLoader without files succeeded")
	}
	cert := webhooktest.WriteServingCert(t, dir, "first")
	certFile, keyFile := cert.CertFile, cert.KeyFile
	l, err := NewCertLoader(certFile, keyFile, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if cn := commonName(t, l); cn != "first" {
		t.Fatalf("serving %q", cn)
	}
	if cfg := l.TLSConfig(); cfg.GetCertificate == nil || cfg.MinVersion == 0 {
		t.Error("TLSConfig does not use the loader")
	}

	// A new pair (a rotated Secret) is picked up at the next look at the
	// files, not before.
	webhooktest.WriteServingCert(t, dir, "second")
	later := time.Now().Add(time.Minute)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if cn := commonName(t, l); cn != "first" {
		t.Errorf("reloaded before the check interval: serving %q", cn)
	}
	l.mu.Lock()
	l.checked = time.Time{}
	l.mu.Unlock()
	if cn := commonName(t, l); cn != "second" {
		t.Errorf("after the files changed: serving %q, want second", cn)
	}

	// A broken pair keeps the previous certificate.
	if err := os.WriteFile(keyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.checked = time.Time{}
	l.mu.Unlock()
	if cn := commonName(t, l); cn != "second" {
		t.Errorf("after a broken key: serving %q, want second", cn)
	}
}
