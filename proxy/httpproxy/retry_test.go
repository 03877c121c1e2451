package httpproxy

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/route"
)

// TestRouteRetries: a backend failing half of the requests of a retryable
// route; with a budget large enough the client sees ≥ 99% success, and a
// small budget caps the attempts at requests + its allowance.
func TestRouteRetries(t *testing.T) {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	var attempts atomic.Int64
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		mu.Lock()
		fail := rng.IntN(2) == 0
		mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	profile := func(ratio float32, minPerSecond uint32) *route.Profile {
		p, err := route.Compile(&destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local",
			Routes:      []*destinationv1.Route{{Name: "GET /r", Condition: &destinationv1.RequestMatch{Method: "GET", PathRegex: "/r"}, IsRetryable: true}},
			RetryBudget: &destinationv1.RetryBudget{RetryRatio: ratio, MinRetriesPerSecond: minPerSecond, TtlMs: 10000},
		}, "web.ns.svc.cluster.local:80")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	var current atomic.Pointer[route.Profile]
	h := newHarness(t, be.Listener.Addr().String(), func(o *testOptions) {
		o.Route = &route.Layer{Registry: o.Metrics,
			Profiles: route.ProfilesFunc(func(context.Context, discovery.Destination) *route.Profile { return current.Load() })}
	})
	const n = 400
	run := func(t *testing.T, c *http.Client) (ok int) {
		t.Helper()
		for range n {
			resp, err := c.Get("http://web.ns.svc.cluster.local/r")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ok++
			}
		}
		return ok
	}
	for _, tc := range []struct {
		name   string
		client *http.Client
	}{{"HTTP/1.1", h1Client(h.addr)}, {"HTTP/2", h2cClient(h.addr)}} {
		t.Run(tc.name+" budget holds", func(t *testing.T) {
			current.Store(profile(1.5, 10)) // a fresh budget: 100 + 1.5 per request
			attempts.Store(0)
			ok := run(t, tc.client)
			t.Logf("%d/%d succeeded in %d attempts", ok, n, attempts.Load())
			if ok < n*99/100 {
				t.Errorf("%d/%d succeeded, want ≥ 99%%", ok, n)
			}
			if a := attempts.Load(); a <= n {
				t.Errorf("%d attempts for %d requests: no retries", a, n)
			}
		})
	}
	t.Run("budget caps the attempts", func(t *testing.T) {
		current.Store(profile(0.2, 1)) // 10 + 0.2 per request over 10 s
		attempts.Store(0)
		ok := run(t, h1Client(h.addr))
		a := attempts.Load()
		t.Logf("%d/%d succeeded in %d attempts", ok, n, a)
		if limit := int64(n + 10 + n/5); a > limit {
			t.Errorf("%d attempts, want at most %d (requests + budget)", a, limit)
		}
		text := scrapeRoutes(t, h)
		if !strings.Contains(text, `route_retryable_total{direction="outbound",dst="web.ns.svc.cluster.local:80",rt_route="GET /r",skipped="no_budget"}`) {
			t.Errorf("no route_retryable_total skipped=no_budget:\n%s", text)
		}
		if !strings.Contains(text, "route_actual_request_total") {
			t.Errorf("no route_actual_request_total:\n%s", text)
		}
	})
}

// slowReader yields its string after a pause, so that a body is streamed.
type slowReader struct {
	s    string
	done bool
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	time.Sleep(50 * time.Millisecond)
	r.done = true
	return copy(p, r.s), nil
}

// TestRouteRetriesOnlyReplayable: a failing retryable route retries a
// request whose small body the engine holds whole, never one whose body
// is still streaming.
func TestRouteRetriesOnlyReplayable(t *testing.T) {
	var attempts atomic.Int64
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	p, err := route.Compile(&destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local",
		Routes: []*destinationv1.Route{{Name: "POST /r", Condition: &destinationv1.RequestMatch{Method: "POST"}, IsRetryable: true}},
	}, "web.ns.svc.cluster.local:80")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, be.Listener.Addr().String(), func(o *testOptions) {
		o.Route = &route.Layer{Registry: o.Metrics,
			Profiles: route.ProfilesFunc(func(context.Context, discovery.Destination) *route.Profile { return p })}
	})
	c := h1Client(h.addr)
	post := func(body io.Reader) int64 {
		t.Helper()
		attempts.Store(0)
		resp, err := c.Post("http://web.ns.svc.cluster.local/r", "text/plain", body)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("status %d, want the backend's 500", resp.StatusCode)
		}
		return attempts.Load()
	}
	if n := post(strings.NewReader("small body")); n != route.MaxAttempts {
		t.Errorf("a buffered body: %d attempts, want %d (retried up to the cap)", n, route.MaxAttempts)
	}
	if n := post(io.MultiReader(strings.NewReader("first"), &slowReader{s: "second"})); n != 1 {
		t.Errorf("a streamed body: %d attempts, want 1", n)
	}
}
