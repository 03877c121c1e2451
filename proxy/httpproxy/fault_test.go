package httpproxy

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/route"
)

// TestFaultInjection: a route aborting 20% of its requests with 503 and
// delaying 10% by 50ms, measured over 1,000 requests (±5 points, about
// 4 standard deviations; a request slowed by a busy machine counts as
// delayed, hence more room above).
func TestFaultInjection(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	p, err := route.Compile(&destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local", Routes: []*destinationv1.Route{{
		Name: "GET /f", Condition: &destinationv1.RequestMatch{Method: "GET", PathRegex: "/f"},
		Fault: &destinationv1.Fault{AbortPercent: 20, AbortHttpStatus: 503, DelayPercent: 10, DelayMs: 50},
	}}}, "web.ns.svc.cluster.local:80")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, be.Listener.Addr().String(), func(o *testOptions) {
		o.Route = &route.Layer{Registry: o.Metrics,
			Profiles: route.ProfilesFunc(func(context.Context, discovery.Destination) *route.Profile { return p })}
	})
	c := h1Client(h.addr)
	const n = 1000
	var aborted, delayed, marked int
	for range n {
		start := time.Now()
		resp, err := c.Get("http://web.ns.svc.cluster.local/f")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if time.Since(start) >= 50*time.Millisecond {
			delayed++
		}
		switch resp.StatusCode {
		case http.StatusServiceUnavailable:
			aborted++
			if resp.Header.Get("l5d-proxy-error") != "" {
				marked++
			}
		case http.StatusOK:
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	t.Logf("aborted %d, delayed %d of %d", aborted, delayed, n)
	if aborted < 150 || aborted > 250 {
		t.Errorf("aborted %d of %d, want 200 ± 50", aborted, n)
	}
	if marked != aborted {
		t.Errorf("%d of %d aborts carry l5d-proxy-error", marked, aborted)
	}
	if delayed < 60 || delayed > 160 {
		t.Errorf("delayed %d of %d, want 100 (60 to 160)", delayed, n)
	}
}
