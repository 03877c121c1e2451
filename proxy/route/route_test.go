package route

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/prometheus/common/expfmt"
)

func rm(method, re string) *destinationv1.RequestMatch {
	return &destinationv1.RequestMatch{Method: method, PathRegex: re}
}

func testProfile(t *testing.T) *Profile {
	t.Helper()
	p, err := Compile(&destinationv1.Profile{
		FullyQualifiedName: "web.ns.svc.cluster.local",
		Routes: []*destinationv1.Route{
			{Name: "GET /books/{id}", Condition: rm("GET", `/books/\d+`)},
			{Name: "books writes", Condition: &destinationv1.RequestMatch{
				All: []*destinationv1.RequestMatch{rm("", "/books(/.*)?"), {Any: []*destinationv1.RequestMatch{rm("POST", ""), rm("PUT", "")}}}}},
			{Name: "not GET /admin", Condition: &destinationv1.RequestMatch{
				All: []*destinationv1.RequestMatch{rm("", "/admin/.*"), {Not: rm("GET", "")}}}},
			{Name: "empty never matches", Condition: &destinationv1.RequestMatch{}},
			{Name: "any GET", Condition: rm("GET", "")},
		},
	}, "web.ns.svc.cluster.local:80")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMatch(t *testing.T) {
	p := testProfile(t)
	tests := []struct {
		method, path, want string
	}{
		{"GET", "/books/12", "GET /books/{id}"},
		{"GET", "/books/12?x=1", "GET /books/{id}"},
		{"GET", "/books/12/x", "any GET"}, // the regex matches the whole path
		{"POST", "/books", "books writes"},
		{"PUT", "/books/7", "books writes"},
		{"DELETE", "/books/7", ""},
		{"POST", "/admin/x", "not GET /admin"},
		{"GET", "/admin/x", "any GET"},
		{"get", "/books/1", ""}, // methods are case-sensitive
		{"PATCH", "/other", ""},
	}
	for _, tc := range tests {
		r := p.Match(tc.method, tc.path)
		got := ""
		if r != nil {
			got = r.Name
		}
		if got != tc.want {
			t.Errorf("%s %s: route %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
	var none *Profile
	if none.Match("GET", "/") != nil {
		t.Error("a nil profile matched a route")
	}
}

// TestPathLiteralPrefix: the literal prefix check agrees with the regular
// expression (an alternation has none; a case-insensitive flag none).
func TestPathLiteralPrefix(t *testing.T) {
	for _, tc := range []struct {
		re, path string
		want     bool
	}{
		{`/api/v1/items/[^/]+`, "/api/v1/items/7", true},
		{`/api/v1/items/[^/]+`, "/api/v2/items/7", false},
		{`/api|/web`, "/web", true},
		{`(?i)/API/x`, "/api/X", true},
		{`/exact`, "/exact", true},
		{`/exact`, "/exactly", false},
		{`.*`, "/anything", true},
	} {
		p, err := Compile(&destinationv1.Profile{Routes: []*destinationv1.Route{{Name: "r", Condition: rm("", tc.re)}}}, "x:80")
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match("GET", tc.path) != nil; got != tc.want {
			t.Errorf("%q on %q: match %v, want %v", tc.re, tc.path, got, tc.want)
		}
	}
}

func TestCompileRefusesBadRegex(t *testing.T) {
	_, err := Compile(&destinationv1.Profile{Routes: []*destinationv1.Route{{Name: "bad", Condition: rm("", "/([")}}}, "x:80")
	if err == nil || !strings.Contains(err.Error(), `route 0 ("bad")`) {
		t.Fatalf("err = %v, want the route named", err)
	}
}

func TestClassify(t *testing.T) {
	status := func(lo, hi uint32) *destinationv1.ResponseMatch {
		return &destinationv1.ResponseMatch{Status: &destinationv1.StatusRange{Min: lo, Max: hi}}
	}
	p, err := Compile(&destinationv1.Profile{Routes: []*destinationv1.Route{{
		Name: "r", Condition: rm("GET", ""),
		ResponseClasses: []*destinationv1.ResponseClass{
			{Condition: status(404, 404), IsFailure: true},
			{Condition: &destinationv1.ResponseMatch{All: []*destinationv1.ResponseMatch{status(500, 599), {Not: status(503, 503)}}}, IsFailure: false},
			{Condition: &destinationv1.ResponseMatch{Any: []*destinationv1.ResponseMatch{status(503, 503), status(429, 429)}}, IsFailure: true},
		},
	}, {Name: "default", Condition: rm("POST", "")}}}, "x:80")
	if err != nil {
		t.Fatal(err)
	}
	r, def := p.Routes[0], p.Routes[1]
	tests := []struct {
		route       *Route
		status      int
		err         error
		wantFailure bool
	}{
		{r, 200, nil, false},
		{r, 404, nil, true},  // class 1
		{r, 500, nil, false}, // class 2: 5xx not a failure here
		{r, 503, nil, true},  // not class 2, class 3
		{r, 429, nil, true},  // class 3
		{r, 0, errors.New("connection refused"), true},
		{def, 500, nil, true}, // default: 5xx
		{def, 404, nil, false},
	}
	for _, tc := range tests {
		k := tc.route.Classify(tc.status, -1, tc.err)
		if k.Failure != tc.wantFailure {
			t.Errorf("route %s status %d err %v: failure %t, want %t", tc.route.Name, tc.status, tc.err, k.Failure, tc.wantFailure)
		}
	}
}

// terminal is a fake client engine: it answers status after delay, or
// fails when the context ends first.
type terminal struct {
	status int
	delay  time.Duration
}

func (t *terminal) Forward(ctx context.Context, x *pipeline.Exchange) error {
	select {
	case <-time.After(t.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	x.Responded(t.status)
	return nil
}

func TestLayerTimeoutAndMetrics(t *testing.T) {
	p, err := Compile(&destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local", Routes: []*destinationv1.Route{
		{Name: "slow", Condition: rm("GET", "/slow"), TimeoutMs: 20},
		{Name: "fast", Condition: rm("GET", "/fast"), TimeoutMs: 5000},
	}}, "web.ns.svc.cluster.local:80")
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	l := &Layer{Registry: reg, Profiles: ProfilesFunc(func(context.Context, discovery.Destination) *Profile { return p })}
	chain := pipeline.NewChain(l)
	tests := []struct {
		path       string
		delay      time.Duration
		wantStatus int // of the StatusError, 0 for none
	}{
		{"/slow", time.Second, http.StatusGatewayTimeout},
		{"/fast", 0, 0},
		{"/other", 0, 0},
	}
	for _, tc := range tests {
		var x pipeline.Exchange
		x.Reset(&pipeline.Conn{}, pipeline.HTTP1, time.Now())
		x.Method, x.Path = "GET", tc.path
		err := chain.Serve(context.Background(), &x, &terminal{status: 200, delay: tc.delay})
		var se *pipeline.StatusError
		switch {
		case tc.wantStatus == 0 && err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case tc.wantStatus != 0 && (!errors.As(err, &se) || se.Status != tc.wantStatus):
			t.Errorf("%s: err %v, want status %d", tc.path, err, tc.wantStatus)
		}
		x.Err = err
		x.Finish(nil)
	}
	text := scrape(t, reg)
	for _, want := range []string{
		`route_request_total{direction="outbound",dst="web.ns.svc.cluster.local:80",rt_route="fast"} 1`,
		`route_request_total{direction="outbound",dst="web.ns.svc.cluster.local:80",rt_route="slow"} 1`,
		`route_response_total{classification="success",direction="outbound",dst="web.ns.svc.cluster.local:80",error="",grpc_status="",rt_route="fast",status_code="200"} 1`,
		`route_response_latency_ms_count{direction="outbound",dst="web.ns.svc.cluster.local:80",rt_route="fast",status_code="200"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(text, `classification="failure"`) || !strings.Contains(text, `rt_route="slow"`) {
		t.Errorf("the timed-out request is not a failure of route slow:\n%s", text)
	}
	if strings.Contains(text, "other") {
		t.Errorf("a request without a route was counted:\n%s", text)
	}
}

func scrape(t *testing.T, reg *metrics.Registry) string {
	t.Helper()
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), RouteFamily) {
			if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	return buf.String()
}

func TestSplit(t *testing.T) {
	p, err := Compile(&destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local", DstOverrides: []*destinationv1.WeightedDst{
		{Authority: "web-v1.ns.svc.cluster.local", WeightMilli: 900},
		{Authority: "web-v2.ns.svc.cluster.local:8080", WeightMilli: 100},
		{Authority: "never.ns.svc.cluster.local", WeightMilli: 0},
	}}, "web.ns.svc.cluster.local:80")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		r    float64
		want string
	}{
		{0, "web-v1.ns.svc.cluster.local:80"},
		{0.8999, "web-v1.ns.svc.cluster.local:80"},
		{0.9, "web-v2.ns.svc.cluster.local:8080"},
		{0.99999, "web-v2.ns.svc.cluster.local:8080"},
	}
	for _, tc := range tests {
		if got := p.Split("web.ns.svc.cluster.local:80", tc.r); got != tc.want {
			t.Errorf("Split(%v) = %q, want %q", tc.r, got, tc.want)
		}
	}
	none, _ := Compile(&destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local"}, "x:80")
	if got := none.Split("web:80", 0.5); got != "web:80" {
		t.Errorf("without overrides Split = %q, want the authority", got)
	}
}

func TestFaultInject(t *testing.T) {
	f := &fault{abort: 0.2, abortStatus: 503, delay: 0.1, delayBy: 5 * time.Millisecond}
	tests := []struct {
		delayDraw, abortDraw float64
		wantDelay            bool
		wantStatus           int
	}{
		{0.5, 0.5, false, 0},
		{0.05, 0.5, true, 0},
		{0.5, 0.1, false, 503},
		{0.05, 0.19, true, 503},
		{0.1, 0.2, false, 0}, // the bounds are exclusive
	}
	for _, tc := range tests {
		start := time.Now()
		err := f.inject(context.Background(), tc.delayDraw, tc.abortDraw)
		if delayed := time.Since(start) >= f.delayBy; delayed != tc.wantDelay {
			t.Errorf("draws %v/%v: delayed %t, want %t", tc.delayDraw, tc.abortDraw, delayed, tc.wantDelay)
		}
		var se *pipeline.StatusError
		switch {
		case tc.wantStatus == 0 && err != nil:
			t.Errorf("draws %v/%v: %v", tc.delayDraw, tc.abortDraw, err)
		case tc.wantStatus != 0 && (!errors.As(err, &se) || se.Status != tc.wantStatus || !errors.Is(err, ErrFaultInjected)):
			t.Errorf("draws %v/%v: err %v, want status %d", tc.delayDraw, tc.abortDraw, err, tc.wantStatus)
		}
	}
}
