package httpproxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/route"
)

// filterProfile has two HTTPRoute rules with filters: /hdr changes request
// and response fields and rewrites the URL, /redir redirects.
func filterProfile(t *testing.T) *route.Profile {
	t.Helper()
	hv := func(n, v string) *destinationv1.HeaderValue { return &destinationv1.HeaderValue{Name: n, Value: v} }
	p, err := route.Compile(&destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local", BackendRoutes: []*destinationv1.BackendRoute{
		{Name: "ns/web/rules[0]", Condition: &destinationv1.RequestMatch{PathPrefix: "/hdr"}, Filters: []*destinationv1.RouteFilter{
			{Kind: &destinationv1.RouteFilter_RequestHeaderModifier{RequestHeaderModifier: &destinationv1.HeaderModifier{
				Set: []*destinationv1.HeaderValue{hv("x-set", "new")}, Add: []*destinationv1.HeaderValue{hv("x-added", "1")}, Remove: []string{"x-gone"}}}},
			{Kind: &destinationv1.RouteFilter_ResponseHeaderModifier{ResponseHeaderModifier: &destinationv1.HeaderModifier{
				Set: []*destinationv1.HeaderValue{hv("x-resp", "set")}, Remove: []string{"x-secret"}}}},
			{Kind: &destinationv1.RouteFilter_UrlRewrite{UrlRewrite: &destinationv1.UrlRewrite{Hostname: "other.example",
				Path: &destinationv1.PathModifier{Kind: &destinationv1.PathModifier_ReplacePrefixMatch{ReplacePrefixMatch: "/v2"}}}}},
		}},
		{Name: "ns/web/rules[1]", Condition: &destinationv1.RequestMatch{PathPrefix: "/redir"}, Filters: []*destinationv1.RouteFilter{
			{Kind: &destinationv1.RouteFilter_RequestRedirect{RequestRedirect: &destinationv1.RequestRedirect{Scheme: "https", Hostname: "example.com", StatusCode: 301,
				Path: &destinationv1.PathModifier{Kind: &destinationv1.PathModifier_ReplacePrefixMatch{ReplacePrefixMatch: "/moved"}}}}},
		}},
	}}, "web.ns.svc.cluster.local:80")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func filterBackend(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-echo-set", strings.Join(r.Header.Values("x-set"), ","))
	w.Header().Set("x-echo-added", r.Header.Get("x-added"))
	w.Header().Set("x-echo-gone", r.Header.Get("x-gone"))
	w.Header().Set("x-echo-host", r.Host)
	w.Header().Set("x-echo-uri", r.RequestURI)
	w.Header().Set("x-secret", "s")
	w.Header().Set("x-resp", "orig")
	_, _ = io.WriteString(w, "ok")
}

// TestRouteFilters: an HTTPRoute rule's filters take effect on the fast
// path (HTTP/1.1), on HTTP/2, and through a meshed pair (HTTP/1.1 carried
// over HTTP/2 between the proxies): the backend sees the changed fields
// and URL, the client the changed response; a redirect rule answers 301
// itself, without l5d-proxy-error.
func TestRouteFilters(t *testing.T) {
	p := filterProfile(t)
	withRoute := func(o *testOptions) {
		o.Route = &route.Layer{Registry: o.Metrics,
			Profiles: route.ProfilesFunc(func(context.Context, discovery.Destination) *route.Profile { return p })}
	}
	h1 := h1Backend(t, filterBackend)
	h2 := h2cBackend(t, http.HandlerFunc(filterBackend))
	single := newHarness(t, h1.Listener.Addr().String(), withRoute)
	singleH2 := newHarness(t, h2.Listener.Addr().String(), withRoute)
	pair := newMeshPair(t, h1.Listener.Addr().String(), true, withRoute)
	clients := []struct {
		name string
		c    *http.Client
	}{
		{"h1 fast path", h1Client(single.addr)},
		{"h2", h2cClient(singleH2.addr)},
		{"h1 over meshed h2", h1Client(pair.addr)},
	}
	for _, tc := range clients {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			req, _ := http.NewRequest(http.MethodGet, "http://web.ns.svc.cluster.local/hdr/a?q=1", nil)
			req.Header.Set("x-set", "old")
			req.Header.Set("x-gone", "bye")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			want := map[string]string{"x-echo-set": "new", "x-echo-added": "1", "x-echo-gone": "", "x-echo-host": "other.example",
				"x-echo-uri": "/v2/a?q=1", "x-secret": "", "x-resp": "set"}
			for k, v := range want {
				if got := strings.Join(resp.Header.Values(k), ","); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}

			resp, err = c.Get("http://web.ns.svc.cluster.local/redir/x?y=2")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMovedPermanently {
				t.Errorf("redirect: status %d, want 301", resp.StatusCode)
			}
			if got, want := resp.Header.Get("Location"), "https://example.com/moved/x?y=2"; got != want {
				t.Errorf("redirect: Location %q, want %q", got, want)
			}
			if v := resp.Header.Get("l5d-proxy-error"); v != "" {
				t.Errorf("redirect carries l5d-proxy-error %q", v)
			}
		})
	}

	// HTTP/1.0 goes the net/http hand-off path.
	t.Run("h1.0 hand-off", func(t *testing.T) {
		for _, tc := range []struct{ target, want string }{
			{"/hdr/a?q=1", "x-echo-set: new|x-echo-added: 1|x-echo-host: other.example|x-echo-uri: /v2/a?q=1|x-resp: set"},
			{"/redir/x", "location: https://example.com/moved/x"},
		} {
			conn, err := net.Dial("tcp", single.addr)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(conn, "GET "+tc.target+" HTTP/1.0\r\nHost: web.ns.svc.cluster.local\r\nx-set: old\r\nx-gone: bye\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			conn.Close()
			for _, kv := range strings.Split(tc.want, "|") {
				k, v, _ := strings.Cut(kv, ": ")
				if got := strings.Join(resp.Header.Values(k), ","); got != v {
					t.Errorf("%s %s: got %q, want %q", tc.target, k, got, v)
				}
			}
			for _, k := range []string{"x-secret", "x-echo-gone", "l5d-proxy-error"} {
				if v := resp.Header.Get(k); v != "" {
					t.Errorf("%s: %s %q, want none", tc.target, k, v)
				}
			}
		}
	})
}
