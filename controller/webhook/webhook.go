// Package webhook is the plumbing of the control plane's admission
// webhooks: an http.Handler that decodes AdmissionReviews (admission.k8s.io/v1)
// and answers them with an admission function, the HTTPS server, and the
// serving certificate reloaded from its mounted Secret.
package webhook

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxReviewBytes bounds an AdmissionReview body (the API server's own
// request limit is 3 MiB).
const MaxReviewBytes = 8 << 20

// DefaultReviewTimeout bounds one review when Handler.Timeout is zero (the
// API server gives a webhook 10 s by default).
const DefaultReviewTimeout = 5 * time.Second

// AdmitFunc decides one admission request. It must return a response; the
// Handler sets its UID.
type AdmitFunc func(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse

// Handler serves AdmissionReviews with Admit. A request that is not an
// AdmissionReview gets HTTP 400.
type Handler struct {
	Admit AdmitFunc
	// Panic answers a request whose Admit panicked (or returned no
	// response). Nil means HTTP 500: the API server then applies the
	// webhook's failurePolicy, as the ServiceProfile validator wants. A
	// webhook that must never block a request (the proxy injector) admits
	// it here instead, with a warning.
	Panic func(req *admissionv1.AdmissionRequest, p any) *admissionv1.AdmissionResponse
	// Timeout bounds Admit; zero means DefaultReviewTimeout.
	Timeout time.Duration
	// Log; nil means slog.Default().
	Log *slog.Logger
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "AdmissionReviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxReviewBytes))
	if err != nil {
		http.Error(w, "reading request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		if err == nil {
			err = errors.New("no request")
		}
		http.Error(w, "invalid AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultReviewTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	resp, ok := h.admit(ctx, review.Request)
	if !ok {
		http.Error(w, "internal error of the webhook", http.StatusInternalServerError)
		return
	}
	resp.UID = review.Request.UID
	data, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	})
	if err != nil {
		http.Error(w, "encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

// admit runs Admit, turning a panic into h.Panic's response, or !ok.
func (h *Handler) admit(ctx context.Context, req *admissionv1.AdmissionRequest) (resp *admissionv1.AdmissionResponse, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			h.log().Error("admission webhook panic", "panic", p, "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name, "stack", string(debug.Stack()))
			if h.Panic == nil {
				resp, ok = nil, false
				return
			}
			resp, ok = h.Panic(req, p), true
		}
	}()
	resp = h.Admit(ctx, req)
	if resp == nil {
		panic("webhook: AdmitFunc returned no response")
	}
	return resp, true
}

// Allowed admits the object unchanged, with optional warnings for the client.
func Allowed(warnings ...string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: true, Warnings: warnings}
}

// Denied refuses the request: kubectl shows `admission webhook "<name>"
// denied the request: <message>`.
func Denied(code int32, reason metav1.StatusReason, message string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{
		Allowed: false,
		Result:  &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: message},
	}
}

// Serve serves h over TLS on lis until ctx is done, then shuts down
// gracefully (waiting at most 10 s for reviews in flight). name says which
// webhook in errors.
func Serve(ctx context.Context, name string, lis net.Listener, h http.Handler, tlsConfig *tls.Config, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { errc <- srv.ServeTLS(lis, "", "") })
	defer wg.Wait()
	select {
	case err := <-errc:
		return fmt.Errorf("%s server: %w", name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("%s shutdown: %w", name, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", name, err)
	}
	return nil
}
