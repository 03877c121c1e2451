package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// fakeMetrics answers from fixed rows and records the queries it got.
type fakeMetrics struct {
	stats  map[string][]Stat // by kind
	edges  []Edge
	routes []Route
	err    error

	statQueries  []StatQuery
	edgeQueries  []string
	routeQueries []RouteQuery
}

func (f *fakeMetrics) StatSummary(_ context.Context, q StatQuery) ([]Stat, error) {
	f.statQueries = append(f.statQueries, q)
	if f.err != nil {
		return nil, f.err
	}
	return f.stats[q.Kind], nil
}

func (f *fakeMetrics) Edges(_ context.Context, ns, kind string, window time.Duration) ([]Edge, error) {
	f.edgeQueries = append(f.edgeQueries, ns+" "+kind+" "+window.String())
	if f.err != nil {
		return nil, f.err
	}
	return f.edges, nil
}

func (f *fakeMetrics) TopRoutes(_ context.Context, q RouteQuery) ([]Route, error) {
	f.routeQueries = append(f.routeQueries, q)
	if f.err != nil {
		return nil, f.err
	}
	return f.routes, nil
}

func ptr(v float64) *float64 { return &v }

var testAssets = fstest.MapFS{
	"index.html":       {Data: []byte("<!doctype html><title>viz</title>")},
	"assets/app-1.js":  {Data: []byte("console.log(1)")},
	"assets/app-1.css": {Data: []byte("body{}")},
}

func newTestServer(t *testing.T, m MetricsClient, cfg Config) *httptest.Server {
	t.Helper()
	cfg.Metrics = m
	if cfg.Assets == nil {
		cfg.Assets = testAssets
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestAPI(t *testing.T) {
	web := Resource{Kind: "deployment", Namespace: "demo", Name: "web"}
	voting := Resource{Kind: "deployment", Namespace: "demo", Name: "voting"}
	m := &fakeMetrics{
		stats: map[string][]Stat{
			"namespace":  {{Resource: Resource{Kind: "namespace", Name: "demo"}, MeshedPods: 4, RunningPods: 4, SuccessRate: ptr(0.9), RPS: 12.5, LatencyP50: ptr(2)}},
			"deployment": {{Resource: web, MeshedPods: 1, RunningPods: 1, SuccessRate: ptr(0.74), RPS: 3}},
			"pod":        {{Resource: Resource{Kind: "pod", Namespace: "demo", Name: "web"}, MeshedPods: 1, RunningPods: 1}},
		},
		edges:  []Edge{{Src: web, Dst: voting, ClientID: "web.demo.serviceaccount.identity.linkerd.cluster.local", ServerID: "voting.demo.serviceaccount.identity.linkerd.cluster.local"}},
		routes: []Route{{Route: "POST /api/vote", SuccessRate: ptr(0.74), RPS: 2}},
	}
	srv := newTestServer(t, m, Config{GrafanaURL: "http://grafana.example:3000/"})

	tests := []struct {
		path string
		want string // a substring of the JSON answer
	}{
		{"/api/config", `"grafanaUrl":"http://grafana.example:3000"`},
		{"/api/namespaces", `"successRate":0.9`},
		{"/api/namespaces/demo/workloads", `"name":"web"`},
		{"/api/namespaces/demo/workloads?kind=deployment&window=10m", `"successRate":0.74`},
		{"/api/namespaces/demo/pods?workload=deployment/web", `"kind":"pod"`},
		{"/api/namespaces/demo/edges", `"serverId":"voting.demo.serviceaccount.identity.linkerd.cluster.local"`},
		{"/api/namespaces/demo/routes?workload=deployment/web", `"route":"POST /api/vote"`},
		{"/api/namespaces/demo/routes?workload=deployment/web&direction=outbound", `"rps":2`},
		{"/api/namespaces/demo/workloads?kind=statefulset", `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, hdr, body := get(t, srv.URL+tt.path)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if !json.Valid([]byte(body)) {
				t.Errorf("invalid JSON: %s", body)
			}
			if !strings.Contains(body, tt.want) {
				t.Errorf("answer lacks %s:\n%s", tt.want, body)
			}
		})
	}

	// What the handlers asked the metrics API.
	wantStats := []StatQuery{
		{Kind: "namespace", Window: time.Minute},
		{Kind: "deployment", Namespace: "demo", Window: time.Minute},
		{Kind: "deployment", Namespace: "demo", Window: 10 * time.Minute},
		{Kind: "pod", Namespace: "demo", Owner: &web, Window: time.Minute},
		{Kind: "statefulset", Namespace: "demo", Window: time.Minute},
	}
	if len(m.statQueries) != len(wantStats) {
		t.Fatalf("stat queries %+v, want %+v", m.statQueries, wantStats)
	}
	for i, q := range m.statQueries {
		w := wantStats[i]
		if q.Kind != w.Kind || q.Namespace != w.Namespace || q.Name != w.Name || q.Window != w.Window ||
			(q.Owner == nil) != (w.Owner == nil) || (q.Owner != nil && *q.Owner != *w.Owner) {
			t.Errorf("stat query %d: %+v, want %+v", i, q, w)
		}
	}
	if got := strings.Join(m.edgeQueries, ";"); got != "demo deployment 1m0s" {
		t.Errorf("edge queries %q", got)
	}
	if len(m.routeQueries) != 2 || m.routeQueries[0].Resource != web || m.routeQueries[0].Outbound || !m.routeQueries[1].Outbound {
		t.Errorf("route queries %+v", m.routeQueries)
	}
}

func TestAPIBadInput(t *testing.T) {
	m := &fakeMetrics{}
	srv := newTestServer(t, m, Config{})
	tests := []struct {
		path string
		code int
		want string
	}{
		{"/api/namespaces/demo/workloads?kind=cronjob", 400, `unknown workload kind \"cronjob\"`},
		{"/api/namespaces/Demo_1/workloads", 400, `invalid namespace name \"Demo_1\"`},
		{"/api/namespaces?window=1y", 400, `invalid window \"1y\"`},
		{"/api/namespaces?window=1s", 400, `invalid window \"1s\"`},
		{"/api/namespaces/demo/routes", 400, `invalid workload \"\"`},
		{"/api/namespaces/demo/routes?workload=deployment/web&direction=sideways", 400, `unknown direction`},
		{"/api/namespaces/demo/pods?workload=web", 400, `invalid workload \"web\"`},
		{"/api/namespaces/demo/edges?kind=authority", 400, `unknown resource kind`},
		{"/api/nothing", 404, `no API GET /api/nothing`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, _, body := get(t, srv.URL+tt.path)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("got %d %s, want %d with %s", code, body, tt.code, tt.want)
			}
		})
	}
	if len(m.statQueries)+len(m.edgeQueries)+len(m.routeQueries) != 0 {
		t.Errorf("bad requests reached the metrics API: %+v %v %+v", m.statQueries, m.edgeQueries, m.routeQueries)
	}
}

// A metrics API failure is an error the dashboard shows, never an empty
// table that would read as "no traffic".
func TestAPIMetricsDown(t *testing.T) {
	srv := newTestServer(t, &fakeMetrics{err: errors.New("prometheus unreachable")}, Config{})
	for _, path := range []string{"/api/namespaces", "/api/namespaces/demo/workloads", "/api/namespaces/demo/edges",
		"/api/namespaces/demo/routes?workload=deployment/web", "/api/namespaces/demo/pods"} {
		code, _, body := get(t, srv.URL+path)
		if code != http.StatusBadGateway || !strings.Contains(body, `"error":"metrics API: prometheus unreachable"`) {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
}

func TestAssetsServed(t *testing.T) {
	srv := newTestServer(t, &fakeMetrics{}, Config{})
	code, hdr, body := get(t, srv.URL+"/")
	if code != 200 || !strings.Contains(body, "<title>viz</title>") || hdr.Get("Cache-Control") != "no-cache" {
		t.Errorf("/: %d %v %s", code, hdr, body)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	code, hdr, body = get(t, srv.URL+"/assets/app-1.js")
	if code != 200 || body != "console.log(1)" || !strings.Contains(hdr.Get("Cache-Control"), "immutable") {
		t.Errorf("/assets/app-1.js: %d %v %q", code, hdr, body)
	}
	if code, _, _ := get(t, srv.URL+"/assets/missing.js"); code != 404 {
		t.Errorf("missing asset: %d", code)
	}
	if code, _, _ := get(t, srv.URL+"/index.html/../../etc/passwd"); code == 200 {
		t.Errorf("path escape answered 200")
	}
}

// The embedded build is a real dashboard: an index.html loading its
// script and styles from assets/, all present.
func TestEmbeddedAssets(t *testing.T) {
	a, err := Assets()
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Metrics: &fakeMetrics{}, Assets: a})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	_, _, index := get(t, srv.URL+"/")
	refs := regexp.MustCompile(`(?:src|href)="\./(assets/[^"]+)"`).FindAllStringSubmatch(index, -1)
	if len(refs) < 2 {
		t.Fatalf("index.html references %d assets, want a script and a stylesheet:\n%s", len(refs), index)
	}
	for _, r := range refs {
		if code, _, body := get(t, srv.URL+"/"+r[1]); code != 200 || len(body) == 0 {
			t.Errorf("%s: %d, %d bytes", r[1], code, len(body))
		}
	}
}

func TestEnforcedHost(t *testing.T) {
	h, err := New(Config{Metrics: &fakeMetrics{}, Assets: testAssets, EnforcedHost: regexp.MustCompile(DefaultEnforcedHost)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		host string
		ok   bool
	}{
		{"localhost:50750", true},
		{"127.0.0.1:50750", true},
		{"[::1]:50750", true},
		{"10.4.0.7:8084", true},
		{"web.linkerd-viz.svc.cluster.local:8084", true},
		{"web.linkerd-viz.svc", true},
		{"evil.example.com", false},
		{"localhost.evil.example.com:50750", false},
	} {
		req := httptest.NewRequest("GET", "/api/config", nil)
		req.Host = tt.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if ok := rec.Code == 200; ok != tt.ok {
			t.Errorf("Host %s: %d, want allowed=%v", tt.host, rec.Code, tt.ok)
		}
	}
}

func TestNewRefusesMissingIndex(t *testing.T) {
	_, err := New(Config{Metrics: &fakeMetrics{}, Assets: fstest.MapFS{}})
	if err == nil || !strings.Contains(err.Error(), "no index.html") {
		t.Errorf("err = %v", err)
	}
	if _, err := New(Config{Assets: testAssets}); err == nil {
		t.Error("New without a metrics client: no error")
	}
}
