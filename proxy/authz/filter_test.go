package authz

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// TestLayerRouteFilters: an authorized request gets its route rule's
// filters (a header added, a redirect answered by the proxy); a denied one
// does not get as far.
func TestLayerRouteFilters(t *testing.T) {
	cluster, _ := inboundpolicy.ParseNetworks("10.0.0.0/8")
	authz := []inboundpolicy.Authorization{{Kind: inboundpolicy.KindAuthorizationPolicy, Name: "web-authz", Identities: []string{webID}}}
	addHeader := []*destinationv1.RouteFilter{{Kind: &destinationv1.RouteFilter_RequestHeaderModifier{RequestHeaderModifier: &destinationv1.HeaderModifier{
		Add: []*destinationv1.HeaderValue{{Name: "x-route", Value: "api"}}, Remove: []string{"x-internal"}}}}}
	redirect := []*destinationv1.RouteFilter{{Kind: &destinationv1.RouteFilter_RequestRedirect{RequestRedirect: &destinationv1.RequestRedirect{
		StatusCode: 301, Path: &destinationv1.PathModifier{Kind: &destinationv1.PathModifier_ReplacePrefixMatch{ReplacePrefixMatch: "/new"}}}}}}
	routes := []inboundpolicy.Route{{Group: "policy.linkerd.io", Name: "web", Authorizations: authz, Matches: []inboundpolicy.RouteMatch{
		{PathType: "PathPrefix", Path: "/api", Filters: addHeader},
		{PathType: "PathPrefix", Path: "/old", Filters: redirect},
		{PathType: "PathPrefix", Path: "/plain"},
	}}}
	tests := []struct {
		name       string
		path       string
		tls        transport.TLS
		wantStatus int
		wantFields []pipeline.Field
		wantRemove []string
		wantLoc    string
	}{
		{"header added", "/api/x", meshed(webID), 200, []pipeline.Field{{Name: "x-route", Value: "api"}}, []string{"x-internal"}, ""},
		{"redirect", "/old/a?b=1", meshed(webID), 301, nil, nil, "http://web.ns:8080/new/a?b=1"},
		{"no filters", "/plain", meshed(webID), 200, nil, nil, ""},
		{"denied: no redirect", "/old/a", meshed(otherID), http.StatusForbidden, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPolicies("deny", cluster, metrics.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			p.Set(inboundpolicy.Default("deny", cluster), map[uint16]inboundpolicy.Port{
				8080: {Port: 8080, ServerKind: inboundpolicy.KindServer, ServerName: "web-http", Routes: routes},
			})
			chain := pipeline.NewChain(&Layer{Policies: p})
			conn := &pipeline.Conn{Client: netip.MustParseAddrPort("10.0.0.9:41000"), OrigDst: netip.MustParseAddrPort("10.0.0.2:8080"), TLS: tt.tls}
			var x pipeline.Exchange
			x.Reset(conn, pipeline.HTTP1, time.Now())
			x.Method, x.Authority, x.Path, x.Header = "GET", "web.ns:8080", tt.path, headers{}
			term := &terminal{}
			if err := chain.Serve(context.Background(), &x, term); err != nil {
				x.Fail(0, err)
			}
			if x.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d", x.Status, tt.wantStatus)
			}
			if !slices.Equal(x.Fields, tt.wantFields) {
				t.Errorf("fields %v, want %v", x.Fields, tt.wantFields)
			}
			var remove []string
			if x.Edit != nil {
				remove = x.Edit.Remove
			}
			if !slices.Equal(remove, tt.wantRemove) {
				t.Errorf("removed %v, want %v", remove, tt.wantRemove)
			}
			loc := ""
			if x.Answer != nil {
				for _, f := range x.Answer.Fields {
					if f.Name == "location" {
						loc = f.Value
					}
					if f.Name == pipeline.HeaderProxyError && tt.wantLoc != "" {
						t.Errorf("the redirect carries %s", f.Name)
					}
				}
			}
			if loc != tt.wantLoc {
				t.Errorf("location %q, want %q", loc, tt.wantLoc)
			}
			if forwarded := term.calls > 0; forwarded != (tt.wantStatus == 200) {
				t.Errorf("forwarded: %v", forwarded)
			}
		})
	}
}
