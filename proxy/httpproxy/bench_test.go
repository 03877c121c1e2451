package httpproxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/route"
)

// BenchmarkProxyHTTP1 measures one proxy hop for a keep-alive HTTP/1.1 POST
// of 128 bytes echoed by the backend (the bench/ scenario, in-process). The
// harness serves HTTP/1 connections as inbound and outbound do: on the h1
// fast path.
func BenchmarkProxyHTTP1(b *testing.B) {
	benchProxy(b, false)
}

// BenchmarkProxyH2C is the same over prior-knowledge HTTP/2.
func BenchmarkProxyH2C(b *testing.B) {
	benchProxy(b, true)
}

func benchProxy(b *testing.B, h2 bool) {
	be := h2cBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	h := newHarness(b, be.Listener.Addr().String())
	c := h1Client(h.addr)
	if h2 {
		c = h2cClient(h.addr)
	}
	benchEcho(b, c)
}

// BenchmarkDirectHTTP1 is the baseline: the same client and backend, no proxy.
func BenchmarkDirectHTTP1(b *testing.B) {
	be := h2cBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	c := h1Client(be.Listener.Addr().String())
	benchEcho(b, c)
}

// BenchmarkMeshPairHTTP1 measures a mesh hop in-process: an HTTP/1.1
// keep-alive POST of 128 bytes through an outbound proxy, mTLS, an inbound
// proxy and an echoing HTTP/1.1 backend. "h2" carries the requests between
// the proxies over HTTP/2 (l5d-orig-proto), "h1" over pooled HTTP/1.1
// connections.
func BenchmarkMeshPairHTTP1(b *testing.B) {
	for _, upgrade := range []bool{false, true} {
		name := "h1"
		if upgrade {
			name = "h2"
		}
		b.Run(name, func(b *testing.B) {
			be := h1Backend(b, func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(w, r.Body) })
			m := newMeshPair(b, be.Listener.Addr().String(), upgrade)
			c := h1Client(m.addr)
			benchEcho(b, c)
		})
	}
}

// BenchmarkMeshPairRoutes measures what the route layer costs on the mesh
// pair (HTTP/1.1 upgraded to HTTP/2 between the proxies, mTLS): "none"
// without a profile, "10routes-retry" with a 10-route profile whose last
// route (the one matched) is retryable, so every request is matched,
// counted in the route metrics, buffered for replay and deposits into the
// retry budget. Compare ns/op and allocs/op of the two in one run:
//
//	go test ./proxy/httpproxy -run '^$' -bench MeshPairRoutes -benchmem -count 5
func BenchmarkMeshPairRoutes(b *testing.B) {
	var routes []*destinationv1.Route
	for i := range 9 {
		routes = append(routes, &destinationv1.Route{Name: fmt.Sprintf("route-%d", i),
			Condition: &destinationv1.RequestMatch{Method: "POST", PathRegex: fmt.Sprintf(`/api/v%d/items/[^/]+`, i)}})
	}
	routes = append(routes, &destinationv1.Route{Name: "echo", IsRetryable: true,
		Condition: &destinationv1.RequestMatch{Method: "POST", PathRegex: `/echo`},
		ResponseClasses: []*destinationv1.ResponseClass{{Condition: &destinationv1.ResponseMatch{
			Status: &destinationv1.StatusRange{Min: 500, Max: 599}}, IsFailure: true}}})
	p, err := route.Compile(&destinationv1.Profile{FullyQualifiedName: "bench.example", Routes: routes}, "bench.example:80")
	if err != nil {
		b.Fatal(err)
	}
	for _, withRoutes := range []bool{false, true} {
		name := "none"
		if withRoutes {
			name = "10routes-retry"
		}
		b.Run(name, func(b *testing.B) {
			be := h1Backend(b, func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(w, r.Body) })
			m := newMeshPair(b, be.Listener.Addr().String(), true, func(o *testOptions) {
				if withRoutes {
					o.Route = &route.Layer{Registry: o.Metrics,
						Profiles: route.ProfilesFunc(func(context.Context, discovery.Destination) *route.Profile { return p })}
				}
			})
			c := h1Client(m.addr)
			before := cpuTime(b)
			benchEcho(b, c)
			// CPU (user and system, all of the process: client, both
			// proxies, backend) per request: steadier than ns/op on a
			// shared machine.
			b.ReportMetric(float64((cpuTime(b)-before).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
