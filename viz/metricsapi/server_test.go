package metricsapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/linkerd-go/linkerd/internal/golden"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

// series is one canned sample: the answer to queries containing all of match.
type series struct {
	match  []string
	labels map[string]string
	value  string
}

// fakeProm is a Prometheus HTTP API answering instant queries with the
// canned series whose match strings the query contains, and recording the
// queries.
type fakeProm struct {
	series []series
	mu     sync.Mutex
	seen   []string
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	q := r.FormValue("query")
	f.mu.Lock()
	f.seen = append(f.seen, q)
	f.mu.Unlock()
	type sample struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	result := []sample{}
	for _, s := range f.series {
		if !slices.ContainsFunc(s.match, func(m string) bool { return !strings.Contains(q, m) }) {
			result = append(result, sample{Metric: s.labels, Value: [2]any{1700000000.0, s.value}})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status": "success",
		"data":   map[string]any{"resultType": "vector", "result": result},
	})
}

func (f *fakeProm) queries() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := slices.Clone(f.seen)
	slices.Sort(q)
	return strings.Join(slices.Compact(q), "\n") + "\n"
}

func l(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// demoProm holds the demo's traffic: bot → web (75% success), web →
// voting (50%), web → items (100%), all mTLS.
func demoProm() *fakeProm {
	up := func(name string) series {
		return series{match: []string{"up{"}, labels: l("namespace", "demo", "pod", name, "deployment", name, "instance", "10.0.0.1:4191"), value: "1"}
	}
	inbound := `response_total{direction="inbound"`
	byDeploy := "by (namespace, deployment, classification)"
	lat := `response_latency_ms_bucket{direction="inbound"`
	return &fakeProm{series: []series{
		up("web"), up("voting"), up("items"), up("bot"),
		{match: []string{inbound, byDeploy}, labels: l("namespace", "demo", "deployment", "web", "classification", "success"), value: "45"},
		{match: []string{inbound, byDeploy}, labels: l("namespace", "demo", "deployment", "web", "classification", "failure"), value: "15"},
		{match: []string{inbound, byDeploy}, labels: l("namespace", "demo", "deployment", "voting", "classification", "success"), value: "30"},
		{match: []string{inbound, byDeploy}, labels: l("namespace", "demo", "deployment", "voting", "classification", "failure"), value: "30"},
		{match: []string{inbound, byDeploy}, labels: l("namespace", "demo", "deployment", "items", "classification", "success"), value: "120"},
		{match: []string{"histogram_quantile(0.5,", lat, "by (namespace, deployment, le)"}, labels: l("namespace", "demo", "deployment", "web"), value: "2.5"},
		{match: []string{"histogram_quantile(0.95,", lat, "by (namespace, deployment, le)"}, labels: l("namespace", "demo", "deployment", "web"), value: "9"},
		{match: []string{"histogram_quantile(0.99,", lat, "by (namespace, deployment, le)"}, labels: l("namespace", "demo", "deployment", "web"), value: "NaN"},
		{match: []string{"tcp_open_connections{direction=\"inbound\"", "by (namespace, deployment)"}, labels: l("namespace", "demo", "deployment", "web"), value: "2"},
		// outbound: web's calls
		{match: []string{`response_total{direction="outbound", deployment=~".+", dst_deployment=~".+"}`}, labels: l("namespace", "demo", "deployment", "web", "dst_namespace", "demo", "dst_deployment", "voting", "server_id", "voting.demo.serviceaccount.identity.linkerd.cluster.local"), value: "60"},
		{match: []string{`response_total{direction="outbound", deployment=~".+", dst_deployment=~".+"}`}, labels: l("namespace", "demo", "deployment", "bot", "dst_namespace", "demo", "dst_deployment", "web", "server_id", "web.demo.serviceaccount.identity.linkerd.cluster.local"), value: "60"},
		{match: []string{`tcp_open_connections{direction="outbound", deployment=~".+", dst_deployment=~".+", peer="dst"}`}, labels: l("namespace", "demo", "deployment", "web", "dst_namespace", "demo", "dst_deployment", "items", "no_tls_reason", "not_provided_by_service_discovery"), value: "1"},
		{match: []string{`response_total{direction="inbound", deployment=~".+"}`, "client_id"}, labels: l("namespace", "demo", "deployment", "voting", "client_id", "web.demo.serviceaccount.identity.linkerd.cluster.local"), value: "60"},
		{match: []string{`response_total{direction="inbound", deployment=~".+"}`, "client_id"}, labels: l("namespace", "demo", "deployment", "web", "client_id", "bot.demo.serviceaccount.identity.linkerd.cluster.local"), value: "60"},
		// routes: no route_* families, web's outbound per authority
		{match: []string{`response_total{direction="outbound", namespace="demo", deployment="web", dst_namespace="demo", dst_deployment=~".+"}`, "authority, classification"}, labels: l("dst_namespace", "demo", "dst_deployment", "voting", "authority", "voting.demo.svc.cluster.local:8080", "classification", "failure"), value: "30"},
		{match: []string{`response_total{direction="outbound", namespace="demo", deployment="web", dst_namespace="demo", dst_deployment=~".+"}`, "authority, classification"}, labels: l("dst_namespace", "demo", "dst_deployment", "voting", "authority", "voting.demo.svc.cluster.local:8080", "classification", "success"), value: "30"},
	}}
}

func newTestServer(t *testing.T, f http.Handler) *Server {
	t.Helper()
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	s, err := NewServer(Config{PrometheusURL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dump renders m as indented JSON, stable across runs (protojson's own
// spacing is deliberately unstable).
func dump(t *testing.T, m proto.Message) string {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out) + "\n"
}

func TestStatSummary(t *testing.T) {
	f := demoProm()
	s := newTestServer(t, f)
	resp, err := s.StatSummary(context.Background(), &vizv1.StatSummaryRequest{
		Selector: &vizv1.Resource{Kind: "deploy", Namespace: "demo"},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "stat-deploy", dump(t, resp))
	golden.Check(t, "stat-deploy-queries", f.queries())
}

func TestStatSummaryTo(t *testing.T) {
	f := demoProm()
	s := newTestServer(t, f)
	_, err := s.StatSummary(context.Background(), &vizv1.StatSummaryRequest{
		Selector:   &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "web"},
		To:         &vizv1.Resource{Kind: "svc", Name: "voting"},
		TimeWindow: "30s",
	})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "stat-to-queries", f.queries())
}

func TestEdges(t *testing.T) {
	s := newTestServer(t, demoProm())
	resp, err := s.Edges(context.Background(), &vizv1.EdgesRequest{Selector: &vizv1.Resource{Kind: "deployment", Namespace: "demo"}})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "edges", dump(t, resp))
}

func TestTopRoutes(t *testing.T) {
	s := newTestServer(t, demoProm())
	resp, err := s.TopRoutes(context.Background(), &vizv1.TopRoutesRequest{
		Selector: &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "web"},
		To:       &vizv1.Resource{Kind: "deployment"},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "routes-to", dump(t, resp))
}

func TestListPods(t *testing.T) {
	s := newTestServer(t, demoProm())
	resp, err := s.ListPods(context.Background(), &vizv1.ListPodsRequest{Namespace: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Pods) != 4 || resp.Pods[0].Name != "bot" || !resp.Pods[0].Meshed || resp.Pods[0].Owner.GetName() != "bot" {
		t.Errorf("ListPods = %v, want bot, items, voting, web, meshed, owned by their deployments", resp.Pods)
	}
}

func TestBadInput(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	downSrv, err := NewServer(Config{PrometheusURL: downURL})
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, demoProm())
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"unknown kind", func() error {
			_, err := s.StatSummary(ctx, &vizv1.StatSummaryRequest{Selector: &vizv1.Resource{Kind: "cronjob", Namespace: "demo"}})
			return err
		}, codes.InvalidArgument, `unknown resource kind "cronjob"`},
		{"no namespace", func() error {
			_, err := s.StatSummary(ctx, &vizv1.StatSummaryRequest{Selector: &vizv1.Resource{Kind: "deploy"}})
			return err
		}, codes.InvalidArgument, "no namespace given"},
		{"missing workload", func() error {
			_, err := s.StatSummary(ctx, &vizv1.StatSummaryRequest{Selector: &vizv1.Resource{Kind: "deploy", Namespace: "demo", Name: "nope"}})
			return err
		}, codes.NotFound, "deployment/nope not found in namespace demo"},
		{"missing namespace", func() error {
			_, err := s.StatSummary(ctx, &vizv1.StatSummaryRequest{Selector: &vizv1.Resource{Kind: "deploy", Namespace: "nope"}})
			return err
		}, codes.NotFound, "namespace nope not found"},
		{"missing --to", func() error {
			_, err := s.StatSummary(ctx, &vizv1.StatSummaryRequest{Selector: &vizv1.Resource{Kind: "deploy", Namespace: "demo"}, To: &vizv1.Resource{Kind: "deploy", Name: "nope"}})
			return err
		}, codes.NotFound, "deployment/nope not found"},
		{"to and from", func() error {
			_, err := s.StatSummary(ctx, &vizv1.StatSummaryRequest{Selector: &vizv1.Resource{Kind: "deploy", Namespace: "demo"},
				To: &vizv1.Resource{Kind: "deploy"}, From: &vizv1.Resource{Kind: "deploy"}})
			return err
		}, codes.InvalidArgument, "mutually exclusive"},
		{"bad window", func() error {
			_, err := s.StatSummary(ctx, &vizv1.StatSummaryRequest{Selector: &vizv1.Resource{Kind: "deploy", Namespace: "demo"}, TimeWindow: "soon"})
			return err
		}, codes.InvalidArgument, `invalid time window "soon"`},
		{"edges of services", func() error {
			_, err := s.Edges(ctx, &vizv1.EdgesRequest{Selector: &vizv1.Resource{Kind: "svc", Namespace: "demo"}})
			return err
		}, codes.InvalidArgument, "edges of service are not supported"},
		{"prometheus down", func() error {
			_, err := downSrv.StatSummary(ctx, &vizv1.StatSummaryRequest{Selector: &vizv1.Resource{Kind: "deploy", Namespace: "demo"}})
			return err
		}, codes.Unavailable, "cannot query Prometheus at " + downURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			st, _ := status.FromError(err)
			if err == nil || st.Code() != tt.code || !strings.Contains(st.Message(), tt.msg) || strings.Contains(st.Message(), "\n") {
				t.Errorf("error = %v, want %s containing %q on one line", err, tt.code, tt.msg)
			}
		})
	}
}

// TestTopRoutesByProfileRoute: when the proxies report ServiceProfile
// routes (route_response_total with rt_route), rows are per route, with
// the method and path of routes named "METHOD /path".
func TestTopRoutesByProfileRoute(t *testing.T) {
	routeSel := `route_response_total{direction="inbound", namespace="demo", deployment="web"}`
	f := &fakeProm{series: []series{
		{match: []string{"up{"}, labels: l("namespace", "demo", "pod", "web", "deployment", "web"), value: "1"},
		{match: []string{routeSel}, labels: l("namespace", "demo", "deployment", "web", "rt_route", "GET /api/vote", "dst", "web.demo.svc.cluster.local:8080", "classification", "success"), value: "74"},
		{match: []string{routeSel}, labels: l("namespace", "demo", "deployment", "web", "rt_route", "GET /api/vote", "dst", "web.demo.svc.cluster.local:8080", "classification", "failure"), value: "26"},
		{match: []string{routeSel}, labels: l("namespace", "demo", "deployment", "web", "rt_route", "", "dst", "web.demo.svc.cluster.local:8080", "classification", "success"), value: "10"},
		{match: []string{"histogram_quantile(0.5,", `route_response_latency_ms_bucket{direction="inbound", namespace="demo", deployment="web"}`}, labels: l("namespace", "demo", "deployment", "web", "rt_route", "GET /api/vote", "dst", "web.demo.svc.cluster.local:8080"), value: "3"},
		// response_total also has web's requests: not shown twice.
		{match: []string{`response_total{direction="inbound", namespace="demo", deployment="web"}`, "authority"}, labels: l("namespace", "demo", "deployment", "web", "authority", "web.demo.svc.cluster.local:8080", "classification", "success"), value: "84"},
	}}
	s := newTestServer(t, f)
	resp, err := s.TopRoutes(context.Background(), &vizv1.TopRoutesRequest{Selector: &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "routes-profile", dump(t, resp))
}

func TestAuthz(t *testing.T) {
	inbound := `response_total{direction="inbound", srv_name=~".+", namespace="demo", deployment="web"}`
	by := "by (srv_kind, srv_name, route_name, authz_kind, authz_name, classification)"
	f := &fakeProm{series: []series{
		{match: []string{"up{"}, labels: l("namespace", "demo", "pod", "web", "deployment", "web"), value: "1"},
		{match: []string{inbound, by}, labels: l("srv_kind", "default", "srv_name", "all-authenticated", "route_name", "default", "authz_kind", "default", "authz_name", "all-authenticated", "classification", "success"), value: "57"},
		{match: []string{inbound, by}, labels: l("srv_kind", "default", "srv_name", "all-authenticated", "route_name", "default", "authz_kind", "default", "authz_name", "all-authenticated", "classification", "failure"), value: "3"},
		{match: []string{"histogram_quantile(0.5,", `response_latency_ms_bucket{direction="inbound", srv_name=~".+", namespace="demo", deployment="web"}`}, labels: l("srv_kind", "default", "srv_name", "all-authenticated", "route_name", "default", "authz_kind", "default", "authz_name", "all-authenticated"), value: "4"},
		{match: []string{`inbound_http_authz_deny_total{namespace="demo", deployment="web"}`, "by (srv_kind, srv_name, route_name)"}, labels: l("srv_kind", "default", "srv_name", "all-authenticated", "route_name", "default"), value: "6"},
	}}
	s := newTestServer(t, f)
	resp, err := s.Authz(context.Background(), &vizv1.AuthzRequest{Resource: &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "authz", dump(t, resp))
	golden.Check(t, "authz-queries", f.queries())
}
