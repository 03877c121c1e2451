package injector_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd/controller/injector"
	"github.com/linkerd-go/linkerd/controller/webhook"
	"github.com/linkerd-go/linkerd/controller/webhook/webhooktest"
)

// runningInjector is an injector serving HTTPS on 127.0.0.1.
type runningInjector struct {
	URL    string // https://127.0.0.1:PORT
	CAPEM  []byte
	Client *http.Client // trusts the serving certificate
}

// startInjector runs the real webhook server until the test ends. reg
// receives its metrics (nil: none).
func startInjector(t *testing.T, client kubernetes.Interface, controllerNS string, reg prometheus.Registerer) *runningInjector {
	t.Helper()
	cert := webhooktest.WriteServingCert(t, t.TempDir(), "linkerd-proxy-injector.linkerd.svc")
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	certs, err := webhook.NewCertLoader(cert.CertFile, cert.KeyFile, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := injector.New(injector.Config{Client: client, ControllerNamespace: controllerNS,
		CreatedBy: "linkerd/proxy-injector test", Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	addr := webhooktest.Serve(t, func(ctx context.Context, lis net.Listener) error {
		return srv.Serve(ctx, lis, certs.TLSConfig())
	})
	return &runningInjector{URL: "https://" + addr, CAPEM: cert.CAPEM, Client: cert.Client(t)}
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

// admit posts an AdmissionReview of req to path and returns the response,
// which must come with HTTP 200.
func (r *runningInjector) admit(t *testing.T, path string, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	t.Helper()
	return webhooktest.Admit(t, r.Client, r.URL+path, webhooktest.Review(t, req))
}
