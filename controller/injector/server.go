// Package injector is the proxy injector: a mutating admission webhook that
// adds the Linkerd proxy to pods that ask for it with linkerd.io/inject
// (on the pod or its namespace), as Linkerd's proxy-injector does.
//
// The decision and the patch come from package inject, with the
// installation's values read from the linkerd-config ConfigMap. A pod the
// injector cannot handle is admitted unchanged: a failure of ours never
// blocks a pod (with failurePolicy: Ignore the API server would admit it
// anyway, but then without telling why). Skips and injections are recorded
// as Events on the pod's owner (or its namespace for a bare pod).
package injector

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd/controller/webhook"
	"github.com/linkerd-go/linkerd/pkg/version"
)

// Paths the webhook serves. Linkerd's MutatingWebhookConfiguration posts to
// "/"; "/inject" is an alias.
const (
	PathRoot   = "/"
	PathInject = "/inject"
)

// Config configures a Server.
type Config struct {
	// Client reads linkerd-config and namespaces, and records events.
	Client kubernetes.Interface
	// ControllerNamespace holds linkerd-config.
	ControllerNamespace string
	// CreatedBy is written to linkerd.io/created-by; default
	// "linkerd/proxy-injector <version>".
	CreatedBy string
	// Registerer receives the injector's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Component names the source of the events; default "linkerd-proxy-injector".
	Component string
}

// Server is the proxy injector.
type Server struct {
	log     *slog.Logger
	client  kubernetes.Interface
	values  *valuesSource
	events  *eventSink
	metrics *metrics
}

// New returns a Server. It does not contact the API server.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("injector: no Kubernetes client")
	}
	if cfg.ControllerNamespace == "" {
		return nil, errors.New("injector: no controller namespace")
	}
	if cfg.CreatedBy == "" {
		cfg.CreatedBy = "linkerd/proxy-injector " + version.Version
	}
	if cfg.Component == "" {
		cfg.Component = "linkerd-proxy-injector"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Server{
		log:     log,
		client:  cfg.Client,
		values:  &valuesSource{client: cfg.Client, namespace: cfg.ControllerNamespace, createdBy: cfg.CreatedBy},
		events:  newEventSink(cfg.Client, cfg.Component, log),
		metrics: m,
	}, nil
}

// Handler serves AdmissionReviews on PathRoot and PathInject. Any
// failure, a panic included, admits the pod unchanged with a warning.
func (s *Server) Handler() http.Handler {
	h := &webhook.Handler{Admit: s.admit, Panic: s.panicked, Log: s.log}
	mux := http.NewServeMux()
	mux.Handle("POST "+PathInject, h)
	mux.Handle("POST "+PathRoot+"{$}", h)
	return mux
}

// Serve serves the webhook over TLS on lis until ctx is done, then shuts
// down gracefully. It also records the events the reviews produce.
func (s *Server) Serve(ctx context.Context, lis net.Listener, tlsConfig *tls.Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.events.run(ctx) })
	err := webhook.Serve(ctx, "proxy injector", lis, s.Handler(), tlsConfig, s.log)
	cancel()
	wg.Wait()
	return err
}
