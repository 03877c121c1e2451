package httpproxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/authz"
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

// TestInboundRouteFilters: the server's proxy applies the filters of the
// Server's HTTPRoute to the requests it authorizes, for HTTP/1.1 carried
// over HTTP/2 between the proxies and for HTTP/2.
func TestInboundRouteFilters(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(filterBackend))
	backend := netip.MustParseAddrPort(be.Listener.Addr().String())
	cluster, _ := inboundpolicy.ParseNetworks("127.0.0.0/8")
	hv := func(n, v string) *destinationv1.HeaderValue { return &destinationv1.HeaderValue{Name: n, Value: v} }
	inbound := func(o *testOptions) {
		p, err := authz.NewPolicies("deny", cluster, o.Metrics)
		if err != nil {
			t.Fatal(err)
		}
		p.Set(inboundpolicy.Default("deny", cluster), map[uint16]inboundpolicy.Port{backend.Port(): {
			Port: backend.Port(), ServerKind: inboundpolicy.KindServer, ServerName: "web-http",
			Routes: []inboundpolicy.Route{{Group: "policy.linkerd.io", Name: "web",
				Authorizations: []inboundpolicy.Authorization{{Kind: inboundpolicy.KindAuthorizationPolicy, Name: "web", Identities: []string{clientIdentity}}},
				Matches: []inboundpolicy.RouteMatch{
					{PathType: "PathPrefix", Path: "/hdr", Filters: []*destinationv1.RouteFilter{
						{Kind: &destinationv1.RouteFilter_RequestHeaderModifier{RequestHeaderModifier: &destinationv1.HeaderModifier{
							Add: []*destinationv1.HeaderValue{hv("x-added", "in")}, Remove: []string{"x-gone"}}}},
						{Kind: &destinationv1.RouteFilter_ResponseHeaderModifier{ResponseHeaderModifier: &destinationv1.HeaderModifier{Remove: []string{"x-secret"}}}}}},
					{PathType: "PathPrefix", Path: "/redir", Filters: []*destinationv1.RouteFilter{
						{Kind: &destinationv1.RouteFilter_RequestRedirect{RequestRedirect: &destinationv1.RequestRedirect{Hostname: "example.com", Port: 8080}}}}},
				}}}}})
		o.Authz = &authz.Layer{Policies: p}
	}
	pair := newMeshPair(t, backend.String(), true, func(o *testOptions) { o.Inbound = inbound })
	for _, tc := range []struct {
		name string
		c    *http.Client
	}{{"h1 over meshed h2", h1Client(pair.addr)}, {"h2", h2cClient(pair.addr)}} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			req, _ := http.NewRequest(http.MethodGet, "http://web.ns.svc.cluster.local/hdr/a", nil)
			req.Header.Set("x-gone", "bye")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			for k, v := range map[string]string{"x-echo-added": "in", "x-echo-gone": "", "x-secret": ""} {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: got %q, want %q (status %d)", k, got, v, resp.StatusCode)
				}
			}
			resp, err = c.Get("http://web.ns.svc.cluster.local/redir/x")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://example.com:8080/redir/x" {
				t.Errorf("redirect: %d Location %q, want 302 http://example.com:8080/redir/x", resp.StatusCode, resp.Header.Get("Location"))
			}
			if v := resp.Header.Get("l5d-proxy-error"); v != "" {
				t.Errorf("redirect carries l5d-proxy-error %q", v)
			}
		})
	}
}
