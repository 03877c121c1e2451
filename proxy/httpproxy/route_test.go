package httpproxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/route"
)

// TestRouteTimeoutAndMetrics: a route's timeout answers 504 with
// l5d-proxy-error over HTTP/1.1 and HTTP/2, a body slower than the
// timeout still arrives whole (the timeout bounds the head), and the
// route metrics count both routes.
func TestRouteTimeoutAndMetrics(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
				return
			}
		case "/stream":
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond)
			_, _ = io.WriteString(w, "late body")
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	p, err := route.Compile(&destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local", Routes: []*destinationv1.Route{
		{Name: "GET /slow", Condition: &destinationv1.RequestMatch{Method: "GET", PathRegex: "/slow"}, TimeoutMs: 100},
		{Name: "GET /stream", Condition: &destinationv1.RequestMatch{Method: "GET", PathRegex: "/stream"}, TimeoutMs: 100},
		{Name: "GET /fast", Condition: &destinationv1.RequestMatch{Method: "GET", PathRegex: "/fast"}},
	}}, "web.ns.svc.cluster.local:80")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, be.Listener.Addr().String(), func(o *testOptions) {
		o.Route = &route.Layer{Registry: o.Metrics,
			Profiles: route.ProfilesFunc(func(context.Context, discovery.Destination) *route.Profile { return p })}
	})
	for _, proto := range []struct {
		name   string
		client *http.Client
	}{{"HTTP/1.1", h1Client(h.addr)}, {"HTTP/2", h2cClient(h.addr)}} {
		t.Run(proto.name, func(t *testing.T) {
			get := func(path string) (*http.Response, string) {
				t.Helper()
				resp, err := proto.client.Get("http://web.ns.svc.cluster.local" + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("%s: reading the body: %v", path, err)
				}
				return resp, string(b)
			}
			start := time.Now()
			resp, _ := get("/slow")
			if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("l5d-proxy-error") == "" {
				t.Errorf("/slow: %d l5d-proxy-error=%q, want 504 with l5d-proxy-error", resp.StatusCode, resp.Header.Get("l5d-proxy-error"))
			}
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("/slow answered after %s, want about the 100ms timeout", d)
			}
			if resp, body := get("/stream"); resp.StatusCode != 200 || body != "late body" {
				t.Errorf("/stream: %d %q, want 200 \"late body\"", resp.StatusCode, body)
			}
			if resp, body := get("/fast"); resp.StatusCode != 200 || body != "ok" {
				t.Errorf("/fast: %d %q", resp.StatusCode, body)
			}
		})
	}
	// The route's metrics are counted when each exchange ends, which may be
	// just after its client read the response: wait for them.
	wants := []string{
		`route_request_total{direction="outbound",dst="web.ns.svc.cluster.local:80",rt_route="GET /fast"} 2`,
		`route_request_total{direction="outbound",dst="web.ns.svc.cluster.local:80",rt_route="GET /slow"} 2`,
		`route_response_total{classification="success",direction="outbound",dst="web.ns.svc.cluster.local:80",error="",grpc_status="",rt_route="GET /stream",status_code="200"} 2`,
	}
	var text string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		text = scrapeRoutes(t, h)
		missing := 0
		for _, want := range wants {
			if !strings.Contains(text, want) {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s; have:\n%s", want, text)
		}
	}
	if !strings.Contains(text, `classification="failure"`) {
		t.Errorf("no failure counted for the timeouts:\n%s", text)
	}
}

// scrapeRoutes returns the route_* families of h's registry as text.
func scrapeRoutes(t *testing.T, h *harness) string {
	t.Helper()
	mfs, err := h.reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "route_") {
			if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	return buf.String()
}
