// Package metricsapi is the viz metrics API (proto/viz/v1): success rate,
// request rate, latency percentiles, TCP stats, edges and routes per
// resource, computed by PromQL over the proxies' metrics in Prometheus
// (response_total, response_latency_ms, tcp_*), and pod counts from a
// PodSource (Kubernetes, or Prometheus's own targets on the local mesh).
//
// Which side's metrics answer a question: a resource's own stats come from
// its proxies' inbound metrics; with a --to or --from filter, from the
// client side's outbound metrics, whose dst_* labels name the peer.
package metricsapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// DefaultTimeWindow is the window stats cover unless asked otherwise, as Linkerd's.
const DefaultTimeWindow = "1m"

// Server answers the metrics API.
type Server struct {
	vizv1.UnimplementedMetricsAPIServer
	prom    promv1.API
	promURL string
	pods    PodSource
	log     *slog.Logger
}

var _ client.API = (*Server)(nil)

// Config configures a Server.
type Config struct {
	// PrometheusURL is Prometheus's base URL (http://host:9090).
	PrometheusURL string
	// Pods lists pods for meshed counts and ListPods; nil means
	// Prometheus's scrape targets (job linkerd-proxy).
	Pods PodSource
	Log  *slog.Logger
}

// NewServer returns a server querying the Prometheus at cfg.PrometheusURL.
func NewServer(cfg Config) (*Server, error) {
	if cfg.PrometheusURL == "" {
		return nil, errors.New("no Prometheus URL")
	}
	c, err := api.NewClient(api.Config{Address: cfg.PrometheusURL})
	if err != nil {
		return nil, fmt.Errorf("prometheus URL %q: %w", cfg.PrometheusURL, err)
	}
	s := &Server{prom: promv1.NewAPI(c), promURL: cfg.PrometheusURL, pods: cfg.Pods, log: cfg.Log}
	if s.pods == nil {
		s.pods = PrometheusPods{API: s.prom, Job: client.ProxyScrapeJob}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// window validates a Prometheus duration, DefaultTimeWindow when empty.
func window(s string) (string, float64, error) {
	if s == "" {
		s = DefaultTimeWindow
	}
	d, err := model.ParseDuration(s)
	if err != nil || d <= 0 {
		return "", 0, status.Errorf(codes.InvalidArgument, "invalid time window %q (e.g. 10s, 1m, 1h)", s)
	}
	return s, time.Duration(d).Seconds(), nil
}

// checkResource validates a resource's kind (canonicalising it) and that a
// workload resource names its namespace.
func checkResource(what string, r *vizv1.Resource, allNS bool) error {
	if r == nil {
		return status.Errorf(codes.InvalidArgument, "no %s resource given", what)
	}
	k, err := client.CanonicalKind(r.GetKind())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	r.Kind = k
	if k != client.KindNamespace && !allNS && r.GetNamespace() == "" {
		return status.Errorf(codes.InvalidArgument, "%s %s: no namespace given", what, k)
	}
	return nil
}

// statusOf turns an internal error into a gRPC status error.
func (s *Server) statusOf(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var pe *promError
	if errors.As(err, &pe) {
		s.log.Warn("prometheus query failed", "query", pe.query, "err", pe.err)
		return status.Errorf(codes.Unavailable, "cannot query Prometheus at %s: %v", s.promURL, pe.err)
	}
	return status.Error(codes.Internal, err.Error())
}

// resourceKey names a row.
type resourceKey struct{ namespace, name string }

// keyOf is the row key of a sample grouped by a plan's labels.
func keyOf(kind string, dst bool, m model.Metric) resourceKey {
	ns := string(m[model.LabelName(nsLabel(dst))])
	if kind == client.KindNamespace {
		return resourceKey{name: ns}
	}
	return resourceKey{namespace: ns, name: string(m[model.LabelName(kindLabel(kind, dst))])}
}

// checkExists returns NotFound when r names a namespace or workload
// without pods.
func (s *Server) checkExists(ctx context.Context, r *vizv1.Resource, allNS bool, pods []Pod) error {
	switch r.GetKind() {
	case client.KindService, client.KindAuthority:
		return nil
	}
	if r.GetKind() != client.KindNamespace && !allNS && r.GetNamespace() != "" {
		if !slices.ContainsFunc(pods, func(p Pod) bool { return p.Namespace == r.GetNamespace() }) {
			return status.Errorf(codes.NotFound, "namespace %s not found (it has no pods)", r.GetNamespace())
		}
	}
	if r.GetName() == "" {
		return nil
	}
	if !slices.ContainsFunc(pods, func(p Pod) bool { return p.has(r.GetKind(), r.GetName()) }) {
		if r.GetKind() == client.KindNamespace {
			return status.Errorf(codes.NotFound, "namespace %s not found (it has no pods)", r.GetName())
		}
		return status.Errorf(codes.NotFound, "%s/%s not found in namespace %s", r.GetKind(), r.GetName(), r.GetNamespace())
	}
	return nil
}

// podsFor lists the pods a request's resources live in.
func (s *Server) podsFor(ctx context.Context, r *vizv1.Resource, allNS bool) ([]Pod, error) {
	ns := r.GetNamespace()
	if allNS || r.GetKind() == client.KindNamespace {
		ns = ""
	}
	return s.pods.Pods(ctx, ns)
}

// ListPods implements the API.
func (s *Server) ListPods(ctx context.Context, req *vizv1.ListPodsRequest) (*vizv1.ListPodsResponse, error) {
	pods, err := s.pods.Pods(ctx, req.GetNamespace())
	if err != nil {
		return nil, s.statusOf(err)
	}
	out := &vizv1.ListPodsResponse{}
	for _, p := range pods {
		pb := &vizv1.Pod{Name: p.Name, Namespace: p.Namespace, Status: p.Status, PodIp: p.IP, Meshed: p.Meshed}
		if p.OwnerKind != "" {
			pb.Owner = &vizv1.Resource{Kind: p.OwnerKind, Namespace: p.Namespace, Name: p.OwnerName}
		}
		out.Pods = append(out.Pods, pb)
	}
	slices.SortFunc(out.Pods, func(a, b *vizv1.Pod) int {
		return cmpStrings(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return out, nil
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
