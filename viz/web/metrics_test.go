package web

import (
	"context"
	"testing"
	"time"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

// fakeAPI is a metrics API answering from fixed responses.
type fakeAPI struct {
	stats    *vizv1.StatSummaryResponse
	edges    *vizv1.EdgesResponse
	routes   map[string]*vizv1.TopRoutesResponse // by the request's to.name ("" inbound)
	pods     *vizv1.ListPodsResponse
	statReqs []*vizv1.StatSummaryRequest
}

func (f *fakeAPI) SelfCheck(context.Context, *vizv1.SelfCheckRequest) (*vizv1.SelfCheckResponse, error) {
	return &vizv1.SelfCheckResponse{}, nil
}

func (f *fakeAPI) StatSummary(_ context.Context, req *vizv1.StatSummaryRequest) (*vizv1.StatSummaryResponse, error) {
	f.statReqs = append(f.statReqs, req)
	return f.stats, nil
}
func (f *fakeAPI) Edges(context.Context, *vizv1.EdgesRequest) (*vizv1.EdgesResponse, error) {
	return f.edges, nil
}
func (f *fakeAPI) TopRoutes(_ context.Context, req *vizv1.TopRoutesRequest) (*vizv1.TopRoutesResponse, error) {
	return f.routes[req.GetTo().GetName()], nil
}
func (f *fakeAPI) ListPods(context.Context, *vizv1.ListPodsRequest) (*vizv1.ListPodsResponse, error) {
	return f.pods, nil
}

func TestPromDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", 10 * time.Second: "10s", 90 * time.Second: "90s", 2 * time.Hour: "2h", 0: ""} {
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestMetricsClient(t *testing.T) {
	dep := func(n string) *vizv1.Resource { return &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: n} }
	f := &fakeAPI{
		stats: &vizv1.StatSummaryResponse{Rows: []*vizv1.StatRow{
			{Resource: &vizv1.Resource{Kind: "pod", Namespace: "demo", Name: "web-1"}, MeshedPods: 1, RunningPods: 1,
				Stats:    &vizv1.Stats{SuccessCount: 74, FailureCount: 26, WindowSeconds: 60, HasLatency: true, LatencyMsP50: 1, LatencyMsP95: 5, LatencyMsP99: 9},
				TcpStats: &vizv1.TcpStats{OpenConnections: 3}},
			{Resource: &vizv1.Resource{Kind: "pod", Namespace: "demo", Name: "voting-1"}, MeshedPods: 1, RunningPods: 1},
		}},
		pods: &vizv1.ListPodsResponse{Pods: []*vizv1.Pod{
			{Name: "web-1", Namespace: "demo", Owner: dep("web"), Status: "Running", Meshed: true},
			{Name: "web-2", Namespace: "demo", Owner: dep("web"), Status: "Running", Meshed: true},
			{Name: "voting-1", Namespace: "demo", Owner: dep("voting"), Status: "Running", Meshed: true},
		}},
		edges: &vizv1.EdgesResponse{Edges: []*vizv1.Edge{
			{Src: dep("web"), Dst: dep("voting"), ClientId: "web", ServerId: "voting"},
			{Src: dep("bot"), Dst: dep("web"), NoTlsReason: "no_identity"},
		}},
		routes: map[string]*vizv1.TopRoutesResponse{
			"":       {Rows: []*vizv1.RouteRow{{Route: "[DEFAULT]", Authority: "web.demo.svc.cluster.local:8080", Stats: &vizv1.Stats{SuccessCount: 1, WindowSeconds: 60}}}},
			"voting": {Rows: []*vizv1.RouteRow{{Route: "[DEFAULT]", Method: "POST", Path: "/demo.v1.Voting/VoteBroken", Authority: "voting", Stats: &vizv1.Stats{FailureCount: 6, WindowSeconds: 60}}}},
		},
	}
	c := NewMetricsClient(f)
	ctx := context.Background()

	pods, err := c.StatSummary(ctx, StatQuery{Kind: "pod", Namespace: "demo", Owner: &Resource{Kind: "deployment", Namespace: "demo", Name: "web"}, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 2 || pods[0].Resource.Name != "web-1" || pods[1].Resource.Name != "web-2" {
		t.Fatalf("pods of web: %+v", pods)
	}
	p := pods[0]
	if *p.SuccessRate != 0.74 || p.RPS != 100.0/60 || *p.LatencyP99 != 9 || p.TCPConnections != 3 {
		t.Errorf("web-1: %+v", p)
	}
	if p := pods[1]; p.SuccessRate != nil || p.MeshedPods != 1 || p.RunningPods != 1 {
		t.Errorf("web-2 (no traffic): %+v", p)
	}
	if r := f.statReqs[0]; r.GetTimeWindow() != "1m" || r.GetSelector().GetKind() != "pod" || r.GetAllNamespaces() {
		t.Errorf("stat request %v", r)
	}

	edges, err := c.Edges(ctx, "demo", "deployment", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(edges) != 2 || !edges[0].MTLS() || edges[1].MTLS() || edges[1].NoTLSReason != "no_identity" {
		t.Errorf("edges %+v", edges)
	}

	in, err := c.TopRoutes(ctx, RouteQuery{Resource: Resource{Kind: "deployment", Namespace: "demo", Name: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 1 || in[0].Route != "[DEFAULT]" || *in[0].SuccessRate != 1 {
		t.Errorf("inbound routes %+v", in)
	}
	out, err := c.TopRoutes(ctx, RouteQuery{Resource: Resource{Kind: "deployment", Namespace: "demo", Name: "web"}, Outbound: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Route != "POST /demo.v1.Voting/VoteBroken" || *out[0].SuccessRate != 0 || out[0].Authority != "voting" {
		t.Errorf("outbound routes %+v", out)
	}
}
