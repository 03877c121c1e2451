package httpproxy

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// recordingResolver remembers what it was asked to resolve.
type recordingResolver struct {
	mu   sync.Mutex
	seen []string
	next discovery.Resolver
}

func (r *recordingResolver) Resolve(ctx context.Context, dst discovery.Destination) (balance.Balancer, error) {
	r.mu.Lock()
	r.seen = append(r.seen, dst.Authority)
	r.mu.Unlock()
	return r.next.Resolve(ctx, dst)
}

func (r *recordingResolver) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[len(r.seen)-1]
}

func TestIngressModeRoutesByOverride(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(echoHandler))
	const override = "web.test.svc.cluster.local:8080"
	for _, tc := range []struct {
		name    string
		ingress bool
		want    string
	}{
		{"ingress mode", true, override},
		{"ordinary outbound", false, "ingress.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rr := &recordingResolver{next: discovery.OriginalDst{}}
			h := newHarness(t, be.Listener.Addr().String(), func(o *testOptions) {
				o.Resolver, o.IngressMode = rr, tc.ingress
			})
			for _, c := range []*http.Client{h1Client(h.addr), h2cClient(h.addr)} { // fast path and net/http path
				req, _ := http.NewRequest("GET", "http://ingress.example/", nil)
				req.Header.Set(pipeline.HeaderDstOverride, override)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got := rr.last(); got != tc.want {
					t.Errorf("resolved %q, want %q", got, tc.want)
				}
			}
		})
	}
}

// namingResolver names destinations whose authority ends in .svc.cluster.local.
type namingResolver struct{ discovery.OriginalDst }

func (namingResolver) CanonicalName(dst discovery.Destination) string {
	if strings.Contains(dst.Authority, ".svc.cluster.local") {
		return dst.Authority
	}
	return ""
}

func TestDstCanonicalHeader(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Saw-Canonical", strings.Join(r.Header.Values(pipeline.HeaderDstCanonical), ","))
	}))
	h := newHarness(t, be.Listener.Addr().String(), func(o *testOptions) { o.Resolver = namingResolver{} })
	for _, tc := range []struct{ host, want string }{
		{"web.test.svc.cluster.local:8080", "web.test.svc.cluster.local:8080"},
		{"web.test.svc.cluster.local:8080", "web.test.svc.cluster.local:8080"}, // cached line reused
		{"api.test.svc.cluster.local:9090", "api.test.svc.cluster.local:9090"},
		{"example.com", ""}, // not named: a forged header is removed, none added
	} {
		for _, c := range []*http.Client{h1Client(h.addr), h2cClient(h.addr)} {
			req, _ := http.NewRequest("GET", "http://"+tc.host+"/", nil)
			req.Header.Set(pipeline.HeaderDstCanonical, "forged.example:1")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Saw-Canonical"); got != tc.want {
				t.Errorf("%s over %s: backend saw l5d-dst-canonical %q, want %q", tc.host, resp.Proto, got, tc.want)
			}
		}
	}
}
