package cmd

import (
	"bytes"
	"context"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd/internal/golden"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

// fakeMetricsAPI answers with canned data for namespace demo: the demo's
// deployments (web 75%, voting 50%, items 100%, bot without inbound
// traffic), its edges and routes; namespace "promdown" answers as when
// Prometheus cannot be reached.
type fakeMetricsAPI struct {
	vizv1.UnimplementedMetricsAPIServer
}

func stats(ok, fail, p50, p95, p99 float64) *vizv1.Stats {
	return &vizv1.Stats{SuccessCount: ok, FailureCount: fail, HasLatency: true, LatencyMsP50: p50, LatencyMsP95: p95, LatencyMsP99: p99, WindowSeconds: 60}
}

func deploy(ns, name string) *vizv1.Resource {
	return &vizv1.Resource{Kind: "deployment", Namespace: ns, Name: name}
}

func (fakeMetricsAPI) check(r *vizv1.Resource) error {
	switch {
	case r.GetKind() == "cronjob":
		return status.Error(codes.InvalidArgument, `unknown resource kind "cronjob" (one of namespace, deployment, statefulset, daemonset, job, pod, service, authority)`)
	case r.GetNamespace() == "promdown":
		return status.Error(codes.Unavailable, "cannot query Prometheus at http://10.250.0.3:9090: dial tcp 10.250.0.3:9090: connect: connection refused")
	case r.GetNamespace() == "nope":
		return status.Error(codes.NotFound, "namespace nope not found (it has no pods)")
	case r.GetName() == "nope":
		return status.Errorf(codes.NotFound, "%s/nope not found in namespace %s", r.GetKind(), r.GetNamespace())
	}
	return nil
}

func (f fakeMetricsAPI) StatSummary(_ context.Context, req *vizv1.StatSummaryRequest) (*vizv1.StatSummaryResponse, error) {
	if err := f.check(req.GetSelector()); err != nil {
		return nil, err
	}
	if req.GetSelector().GetKind() == "service" {
		return &vizv1.StatSummaryResponse{TimeWindow: "1m"}, nil
	}
	rows := []*vizv1.StatRow{
		{Resource: deploy("demo", "bot"), MeshedPods: 1, RunningPods: 1},
		{Resource: deploy("demo", "items"), MeshedPods: 1, RunningPods: 1, Stats: stats(120, 0, 1.2, 4.6, 9.8), TcpStats: &vizv1.TcpStats{OpenConnections: 1, ReadBytesTotal: 6000, WriteBytesTotal: 12000}},
		{Resource: deploy("demo", "voting"), MeshedPods: 1, RunningPods: 1, Stats: stats(30, 30, 1, 2, 3), TcpStats: &vizv1.TcpStats{OpenConnections: 1}},
		{Resource: deploy("demo", "web"), MeshedPods: 1, RunningPods: 2, Stats: stats(45, 15, 3, 9, math.NaN()), TcpStats: &vizv1.TcpStats{OpenConnections: 2}},
	}
	if req.GetAllNamespaces() {
		rows = append(rows, &vizv1.StatRow{Resource: deploy("linkerd-viz", "prometheus"), MeshedPods: 1, RunningPods: 1})
	}
	return &vizv1.StatSummaryResponse{Rows: rows, TimeWindow: "1m"}, nil
}

func (f fakeMetricsAPI) Edges(_ context.Context, req *vizv1.EdgesRequest) (*vizv1.EdgesResponse, error) {
	if err := f.check(req.GetSelector()); err != nil {
		return nil, err
	}
	id := func(sa string) string { return sa + ".demo.serviceaccount.identity.linkerd.cluster.local" }
	return &vizv1.EdgesResponse{Edges: []*vizv1.Edge{
		{Src: deploy("demo", "bot"), Dst: deploy("demo", "web"), ClientId: id("bot"), ServerId: id("web")},
		{Src: deploy("demo", "web"), Dst: deploy("demo", "items"), NoTlsReason: "not_provided_by_service_discovery"},
		{Src: deploy("demo", "web"), Dst: deploy("demo", "voting"), ClientId: id("web"), ServerId: id("voting")},
	}}, nil
}

func (f fakeMetricsAPI) TopRoutes(_ context.Context, req *vizv1.TopRoutesRequest) (*vizv1.TopRoutesResponse, error) {
	if err := f.check(req.GetSelector()); err != nil {
		return nil, err
	}
	src, to := req.GetSelector().GetName(), req.GetTo().GetName()
	switch {
	case src == "bot" && to == "web":
		return &vizv1.TopRoutesResponse{Rows: []*vizv1.RouteRow{
			{Route: "[DEFAULT]", Authority: "web.demo.svc.cluster.local:8080", Resource: deploy("demo", "web"), Stats: stats(45, 15, 3, 9, 10)},
		}}, nil
	case src == "web" && to == "voting":
		return &vizv1.TopRoutesResponse{Rows: []*vizv1.RouteRow{
			{Route: "POST /demo.v1.Voting/VoteGhost", Method: "POST", Path: "/demo.v1.Voting/VoteGhost", Authority: "voting.demo.svc.cluster.local:8080", Resource: deploy("demo", "voting"), Stats: stats(0, 12, 1, 2, 2)},
			{Route: "[DEFAULT]", Authority: "voting.demo.svc.cluster.local:8080", Resource: deploy("demo", "voting"), Stats: stats(30, 0, 1, 2, 2)},
		}}, nil
	case src == "web" && to == "":
		return &vizv1.TopRoutesResponse{Rows: []*vizv1.RouteRow{
			{Route: "[DEFAULT]", Authority: "web.demo.svc.cluster.local:8080", Resource: deploy("demo", "web"), Stats: stats(45, 15, 3, 9, 10)},
		}}, nil
	case src == "":
		return &vizv1.TopRoutesResponse{Rows: []*vizv1.RouteRow{
			{Route: "[DEFAULT]", Authority: "items.demo.svc.cluster.local:8080", Resource: deploy("demo", "items"), Stats: stats(120, 0, 1, 4, 9)},
			{Route: "[DEFAULT]", Authority: "web.demo.svc.cluster.local:8080", Resource: deploy("demo", "web"), Stats: stats(45, 15, 3, 9, 10)},
		}}, nil
	}
	return &vizv1.TopRoutesResponse{}, nil
}

func (f fakeMetricsAPI) Authz(_ context.Context, req *vizv1.AuthzRequest) (*vizv1.AuthzResponse, error) {
	if err := f.check(req.GetResource()); err != nil {
		return nil, err
	}
	if req.GetResource().GetName() != "web" {
		return &vizv1.AuthzResponse{}, nil
	}
	return &vizv1.AuthzResponse{Rows: []*vizv1.AuthzRow{
		{ServerKind: "default", ServerName: "all-authenticated", RouteName: "default", AuthzKind: "default", AuthzName: "all-authenticated", Stats: stats(45, 15, 3, 9, 10)},
		{ServerKind: "default", ServerName: "all-authenticated", RouteName: "default", DeniedCount: 6, Stats: &vizv1.Stats{WindowSeconds: 60}},
		{ServerKind: "server", ServerName: "web-http", RouteName: "vote", AuthzKind: "authorizationpolicy", AuthzName: "voters", Stats: stats(30, 0, 1, 2, 2)},
	}}, nil
}

// startFakeMetricsAPI serves fakeMetricsAPI and returns its address.
func startFakeMetricsAPI(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	vizv1.RegisterMetricsAPIServer(gs, fakeMetricsAPI{})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// TestVizGolden compares the viz commands' output with
// testdata/viz_*.golden. Regenerate with: go test ./cli/cmd -run TestVizGolden -update
func TestVizGolden(t *testing.T) {
	addr := startFakeMetricsAPI(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	noMesh := t.TempDir()
	api := []string{"--api-addr", addr}
	tests := []struct {
		name string
		args []string
	}{
		{"viz_stat_deploy", append([]string{"viz", "stat", "deploy", "-n", "demo"}, api...)},
		{"viz_stat_wide", append([]string{"viz", "stat", "deploy", "-n", "demo", "-o", "wide"}, api...)},
		{"viz_stat_json", append([]string{"viz", "stat", "deploy", "-n", "demo", "-o", "json"}, api...)},
		{"viz_stat_all_namespaces", append([]string{"viz", "stat", "deploy", "-A"}, api...)},
		{"viz_stat_no_traffic", append([]string{"viz", "stat", "svc", "-n", "demo"}, api...)},
		{"viz_stat_unknown_kind", append([]string{"viz", "stat", "cronjob", "-n", "demo"}, api...)},
		{"viz_stat_missing_workload", append([]string{"viz", "stat", "deploy/nope", "-n", "demo"}, api...)},
		{"viz_stat_missing_namespace", append([]string{"viz", "stat", "deploy", "-n", "nope"}, api...)},
		{"viz_stat_prometheus_down", append([]string{"viz", "stat", "deploy", "-n", "promdown"}, api...)},
		{"viz_stat_to_and_from", append([]string{"viz", "stat", "deploy", "-n", "demo", "--to", "deploy/web", "--from", "deploy/bot"}, api...)},
		{"viz_stat_bad_output", append([]string{"viz", "stat", "deploy", "-o", "yaml"}, api...)},
		{"viz_stat_api_down", []string{"viz", "stat", "deploy", "-n", "demo", "--api-addr", closedAddr}},
		{"viz_stat_no_mesh", []string{"viz", "stat", "deploy", "-n", "demo", "--state-dir", noMesh}},
		{"viz_edges", append([]string{"viz", "edges", "deploy", "-n", "demo"}, api...)},
		{"viz_edges_wide", append([]string{"viz", "edges", "deploy", "-n", "demo", "-o", "wide"}, api...)},
		{"viz_edges_json", append([]string{"viz", "edges", "deploy", "-n", "demo", "-o", "json"}, api...)},
		{"viz_edges_named", append([]string{"viz", "edges", "deploy/web", "-n", "demo"}, api...)},
		{"viz_routes", append([]string{"viz", "routes", "deploy/web", "-n", "demo"}, api...)},
		{"viz_routes_to", append([]string{"viz", "routes", "deploy/web", "-n", "demo", "--to", "deploy/voting"}, api...)},
		{"viz_routes_all", append([]string{"viz", "routes", "deploy", "-n", "demo", "-o", "wide"}, api...)},
		{"viz_routes_json", append([]string{"viz", "routes", "deploy/web", "-n", "demo", "-o", "json"}, api...)},
		{"viz_authz", append([]string{"viz", "authz", "deploy/web", "-n", "demo"}, api...)},
		{"viz_authz_no_traffic", append([]string{"viz", "authz", "deploy/items", "-n", "demo"}, api...)},
		{"viz_authz_missing", append([]string{"viz", "authz", "deploy/nope", "-n", "demo"}, api...)},
		{"viz_top_snapshot", append([]string{"viz", "top", "deploy/web", "-n", "demo"}, api...)},
		{"viz_top_missing", append([]string{"viz", "top", "deploy/nope", "-n", "demo"}, api...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), tt.args, Env{Stdout: &stdout, Stderr: &stderr, Stdin: strings.NewReader("")})
			got := golden.Result(code, stdout.String(), strings.ReplaceAll(strings.ReplaceAll(stderr.String(), closedAddr, "ADDR"), noMesh, "STATEDIR"))
			golden.Check(t, tt.name, got)
			if code != 0 && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("a failure must be one line on stderr, got %q", stderr.String())
			}
		})
	}
}

func TestRenderTop(t *testing.T) {
	rows := []topRow{
		{Source: "web", Destination: "voting", Method: "POST", Path: "/demo.v1.Voting/VoteGhost", Count: 12, Best: 1, Worst: 2, Last: 2, Success: 0},
		{Source: "bot", Destination: "web", Path: "[DEFAULT]", Count: 60, Best: 3, Worst: 10, Last: 9, Success: 0.75},
		{Source: "web", Destination: "items", Path: "[DEFAULT]", Count: 0, Best: math.NaN(), Worst: math.NaN(), Last: math.NaN(), Success: math.NaN()},
	}
	var b strings.Builder
	if err := renderTop(&b, rows, false, "\n"); err != nil {
		t.Fatal(err)
	}
	b.WriteString("--- hide sources\n")
	if err := renderTop(&b, rows, true, "\n"); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "viz_top_render", b.String())
}

func TestHasKubeconfig(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", "")
	if hasKubeconfig(&GlobalOptions{}) {
		t.Error("no kubeconfig anywhere: hasKubeconfig = true")
	}
	if !hasKubeconfig(&GlobalOptions{Kubeconfig: "/x"}) {
		t.Error("--kubeconfig given: hasKubeconfig = false")
	}
	t.Setenv("KUBECONFIG", "/x")
	if !hasKubeconfig(&GlobalOptions{}) {
		t.Error("$KUBECONFIG set: hasKubeconfig = false")
	}
	t.Setenv("KUBECONFIG", "")
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".kube", "config"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !hasKubeconfig(&GlobalOptions{}) {
		t.Error("~/.kube/config exists: hasKubeconfig = false")
	}
	// An explicit --state-dir wins over the kubeconfig: the local mesh
	// (none there) is the target, not the cluster.
	var stdout, stderr bytes.Buffer
	dir := t.TempDir()
	code := Execute(context.Background(), []string{"viz", "stat", "deploy", "--state-dir", dir}, Env{Stdout: &stdout, Stderr: &stderr})
	if want := "Error: no local mesh is up at " + dir + " (run: linkerd local up)\n"; code != 1 || stderr.String() != want {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), want)
	}
}
