package route

import (
	"net/http"
	"strings"
	"testing"
	"time"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
)

// header is a pipeline.HeaderReader over an http.Header.
type header http.Header

func (h header) Get(name string) string { return http.Header(h).Get(name) }

func TestBackendRouteMatches(t *testing.T) {
	hm := func(name, value string, re bool) *destinationv1.HeaderMatch {
		return &destinationv1.HeaderMatch{Name: name, Value: value, Regex: re}
	}
	wd := func(a string, w uint32) *destinationv1.WeightedDst {
		return &destinationv1.WeightedDst{Authority: a, WeightMilli: w}
	}
	p, err := Compile(&destinationv1.Profile{
		BackendRoutes: []*destinationv1.BackendRoute{
			{Name: "exact", Condition: &destinationv1.RequestMatch{PathExact: "/login"}, Backends: []*destinationv1.WeightedDst{wd("auth:8080", 1000)}, TimeoutMs: 500},
			{Name: "canary header", Condition: &destinationv1.RequestMatch{Headers: []*destinationv1.HeaderMatch{hm("X-Canary", "1", false)}},
				Backends: []*destinationv1.WeightedDst{wd("web-v2.ns.svc.cluster.local", 1000)}},
			{Name: "api POST", Condition: &destinationv1.RequestMatch{PathPrefix: "/api/", Method: "POST"}, Backends: []*destinationv1.WeightedDst{wd("writer", 1000)}},
			{Name: "user regex", Condition: &destinationv1.RequestMatch{Headers: []*destinationv1.HeaderMatch{hm("x-user", "[a-c].*", true)}}, Backends: []*destinationv1.WeightedDst{wd("abc", 1000)}},
			{Name: "query", Condition: &destinationv1.RequestMatch{QueryParams: []*destinationv1.HeaderMatch{hm("v", "2", false)}}, Backends: []*destinationv1.WeightedDst{wd("v2", 1000)}},
			{Name: "static", Condition: &destinationv1.RequestMatch{PathPrefix: "/static"}}, // the parent itself
			{Name: "split", Condition: &destinationv1.RequestMatch{PathPrefix: "/"}, Backends: []*destinationv1.WeightedDst{wd("web-v1", 900), wd("web-v2", 100)}},
		},
		DstOverrides: []*destinationv1.WeightedDst{wd("never", 1000)},
		Routes:       []*destinationv1.Route{{Name: "profile GET /login", Condition: rm("GET", "/login")}},
	}, "web.ns.svc.cluster.local:80")
	if err != nil {
		t.Fatal(err)
	}
	const auth = "web.ns.svc.cluster.local:80"
	tests := []struct {
		name, method, target string
		h                    http.Header
		draw                 float64
		want                 string
	}{
		{"exact path", "GET", "/login?next=/", nil, 0, "auth:8080"},
		{"exact is not a prefix", "GET", "/login/x", nil, 0, "web-v1:80"},
		{"header, case-insensitive name", "GET", "/", http.Header{"X-Canary": {"1"}}, 0, "web-v2.ns.svc.cluster.local:80"},
		{"header value differs", "GET", "/", http.Header{"X-Canary": {"2"}}, 0.95, "web-v2:80"},
		{"prefix and method", "POST", "/api/books", nil, 0, "writer:80"},
		{"prefix segment", "POST", "/api", nil, 0, "writer:80"},
		{"prefix is by segment", "POST", "/apix", nil, 0, "web-v1:80"},
		{"method differs", "GET", "/api/books", nil, 0, "web-v1:80"},
		{"header regex", "GET", "/", http.Header{"X-User": {"bob"}}, 0, "abc:80"},
		{"header regex is whole", "GET", "/", http.Header{"X-User": {"dave"}}, 0, "web-v1:80"},
		{"query parameter", "GET", "/x?a=1&v=2", nil, 0, "v2:80"},
		{"query parameter differs", "GET", "/x?v=3", nil, 0, "web-v1:80"},
		{"no backends: the parent", "GET", "/static/a.css", nil, 0.99, auth},
		{"split 90", "GET", "/x", nil, 0.899, "web-v1:80"},
		{"split 10", "GET", "/x", nil, 0.9, "web-v2:80"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := p.Backend(&Request{Method: tc.method, Target: tc.target, Header: header(tc.h)}, auth, tc.draw)
			if got != tc.want {
				t.Errorf("Backend = %q, want %q", got, tc.want)
			}
		})
	}
	// As routes: the ServiceProfile's first, then the rules' (with their
	// timeouts and names).
	for _, tc := range []struct {
		method, target, want string
		timeout              time.Duration
	}{
		{"GET", "/login", "profile GET /login", 0},
		{"POST", "/login", "exact", 500 * time.Millisecond},
		{"POST", "/api/x", "api POST", 0},
		{"DELETE", "/anything", "split", 0},
	} {
		r := p.MatchRequest(&Request{Method: tc.method, Target: tc.target})
		if r == nil || r.Name != tc.want || r.Timeout != tc.timeout {
			t.Errorf("%s %s: route %+v, want %q with timeout %v", tc.method, tc.target, r, tc.want, tc.timeout)
		}
	}
	// Without backend routes, the overrides decide.
	q, err := Compile(&destinationv1.Profile{DstOverrides: []*destinationv1.WeightedDst{wd("other", 1000)}}, auth)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Backend(&Request{Method: "GET", Target: "/"}, auth, 0.5); got != "other:80" {
		t.Errorf("Backend with overrides only = %q, want other:80", got)
	}
	if !q.Splits() || (&Profile{}).Splits() {
		t.Error("Splits is wrong")
	}
}

func TestCompileRefusesBadBackendRoutes(t *testing.T) {
	for _, tc := range []struct {
		br   *destinationv1.BackendRoute
		want string
	}{
		{&destinationv1.BackendRoute{Name: "re", Condition: &destinationv1.RequestMatch{Headers: []*destinationv1.HeaderMatch{{Name: "x", Value: "((", Regex: true}}}}, `backend route 0 ("re")`},
		{&destinationv1.BackendRoute{Name: "noname", Condition: &destinationv1.RequestMatch{QueryParams: []*destinationv1.HeaderMatch{{Value: "x"}}}}, "without a name"},
		{&destinationv1.BackendRoute{Name: "zero", Condition: &destinationv1.RequestMatch{PathPrefix: "/"}, Backends: []*destinationv1.WeightedDst{{Authority: "a", WeightMilli: 0}}}, "sum to 0"},
	} {
		_, err := Compile(&destinationv1.Profile{BackendRoutes: []*destinationv1.BackendRoute{tc.br}}, "x:80")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%v) = %v, want an error containing %q", tc.br, err, tc.want)
		}
	}
}

func TestProfileRoutesMatchHeaders(t *testing.T) {
	p, err := Compile(&destinationv1.Profile{Routes: []*destinationv1.Route{
		{Name: "h", Condition: &destinationv1.RequestMatch{PathPrefix: "/", Headers: []*destinationv1.HeaderMatch{{Name: "x-a", Value: "1"}}}},
	}}, "x:80")
	if err != nil {
		t.Fatal(err)
	}
	if r := p.MatchRequest(&Request{Method: "GET", Target: "/z", Header: header{"X-A": {"1"}}}); r == nil || r.Name != "h" {
		t.Errorf("route = %v, want h", r)
	}
	if r := p.MatchRequest(&Request{Method: "GET", Target: "/z"}); r != nil {
		t.Errorf("route = %v without the header, want none", r.Name)
	}
}
