package authz

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

const (
	webID   = "web.test.serviceaccount.identity.linkerd.cluster.local"
	otherID = "other.test.serviceaccount.identity.linkerd.cluster.local"
)

type terminal struct{ calls int }

func (t *terminal) Forward(_ context.Context, x *pipeline.Exchange) error {
	t.calls++
	x.Responded(200)
	return nil
}

func meshed(id string) transport.TLS { return transport.TLS{Mode: transport.TLSMeshed, ID: id} }

// webOnly: port 8080 has a Server allowing only web; other ports the default.
func webOnly(t *testing.T, def string, reg *metrics.Registry) *Policies {
	t.Helper()
	cluster, _ := inboundpolicy.ParseNetworks("10.0.0.0/8")
	p, err := NewPolicies(def, cluster, reg)
	if err != nil {
		t.Fatal(err)
	}
	p.Set(inboundpolicy.Default(def, cluster), map[uint16]inboundpolicy.Port{
		8080: {Port: 8080, ServerKind: inboundpolicy.KindServer, ServerName: "web-http", Authorizations: []inboundpolicy.Authorization{
			{Kind: inboundpolicy.KindAuthorizationPolicy, Name: "web-only", Identities: []string{webID}}}},
	})
	return p
}

func TestLayer(t *testing.T) {
	client := netip.MustParseAddrPort("10.0.0.9:41000")
	tests := []struct {
		name      string
		def       string
		port      uint16
		tls       transport.TLS
		grpc      bool
		wantAllow bool
		wantGRPC  int32
	}{
		{"allowed identity", "all-unauthenticated", 8080, meshed(webID), false, true, -1},
		{"other identity", "all-unauthenticated", 8080, meshed(otherID), false, false, -1},
		{"other identity gRPC", "all-unauthenticated", 8080, meshed(otherID), true, false, 7},
		{"unmeshed", "all-unauthenticated", 8080, transport.NoIdentity("no_tls_from_remote"), false, false, -1},
		{"default port unmeshed", "all-unauthenticated", 9090, transport.NoIdentity("no_tls_from_remote"), false, true, -1},
		{"default deny", "deny", 9090, meshed(webID), false, false, -1},
		{"default all-authenticated meshed", "all-authenticated", 9090, meshed(otherID), false, true, -1},
		{"default all-authenticated unmeshed", "all-authenticated", 9090, transport.NoIdentity("loopback"), false, false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := metrics.NewRegistry()
			l := &Layer{Policies: webOnly(t, tt.def, reg)}
			conn := &pipeline.Conn{Client: client, OrigDst: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), tt.port), TLS: tt.tls}
			var x pipeline.Exchange
			x.Reset(conn, pipeline.HTTP1, time.Now())
			x.GRPC = tt.grpc
			term := &terminal{}
			err := pipeline.NewChain(l).Serve(context.Background(), &x, term)
			if tt.wantAllow {
				if err != nil || term.calls != 1 {
					t.Fatalf("err %v, forwarded %d times; want forwarded", err, term.calls)
				}
				if n := countFamily(t, reg, HTTPAllow); n != 1 {
					t.Errorf("%s = %v, want 1", HTTPAllow, n)
				}
				return
			}
			var se *pipeline.StatusError
			if !errors.As(err, &se) || se.Status != http.StatusForbidden || term.calls != 0 {
				t.Fatalf("err %v, forwarded %d times; want 403 not forwarded", err, term.calls)
			}
			a := x.Fail(0, err)
			if a.Status != http.StatusForbidden && !tt.grpc {
				t.Errorf("answer status %d, want 403", a.Status)
			}
			if x.GRPCStatus != tt.wantGRPC {
				t.Errorf("grpc-status %d, want %d", x.GRPCStatus, tt.wantGRPC)
			}
			if n := countFamily(t, reg, HTTPDeny); n != 1 {
				t.Errorf("%s = %v, want 1", HTTPDeny, n)
			}
		})
	}
}

func TestAuthorizeTCP(t *testing.T) {
	reg := metrics.NewRegistry()
	p := webOnly(t, "all-unauthenticated", reg)
	target := netip.MustParseAddrPort("10.0.0.2:8080")
	client := netip.MustParseAddrPort("10.0.0.9:41000")
	if !p.AuthorizeTCP(target, client, meshed(webID)) {
		t.Error("web denied")
	}
	if p.AuthorizeTCP(target, client, meshed(otherID)) || p.AuthorizeTCP(target, client, transport.NoIdentity("no_tls_from_remote")) {
		t.Error("other or unmeshed allowed")
	}
	if got := labelsOf(t, reg, TCPAllow); got["srv_kind"] != "server" || got["srv_name"] != "web-http" ||
		got["authz_kind"] != "authorizationpolicy" || got["authz_name"] != "web-only" || got["client_id"] != webID || got["target_port"] != "8080" {
		t.Errorf("allow labels = %v", got)
	}
	if n := countFamily(t, reg, TCPDeny); n != 2 {
		t.Errorf("%s = %v, want 2", TCPDeny, n)
	}
}

func TestNewPoliciesRefusesUnknownDefault(t *testing.T) {
	if _, err := NewPolicies("everyone", nil, nil); err == nil {
		t.Fatal("accepted an unknown default policy")
	}
}

// countFamily sums a family's counters.
func countFamily(t *testing.T, reg *metrics.Registry, family string) float64 {
	t.Helper()
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == family {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// labelsOf returns the labels of a family's first series.
func labelsOf(t *testing.T, reg *metrics.Registry, family string) map[string]string {
	t.Helper()
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, mf := range mfs {
		if mf.GetName() == family && len(mf.GetMetric()) > 0 {
			for _, l := range mf.GetMetric()[0].GetLabel() {
				out[l.GetName()] = l.GetValue()
			}
		}
	}
	return out
}

// BenchmarkLayer is the cost of one allowed request's check and count.
func BenchmarkLayer(b *testing.B) {
	cluster, _ := inboundpolicy.ParseNetworks("10.0.0.0/8")
	p, _ := NewPolicies("deny", cluster, metrics.NewRegistry())
	p.Set(inboundpolicy.Default("deny", cluster), map[uint16]inboundpolicy.Port{
		8080: {Port: 8080, ServerKind: inboundpolicy.KindServer, ServerName: "web-http", Authorizations: []inboundpolicy.Authorization{
			{Kind: inboundpolicy.KindAuthorizationPolicy, Name: "web-only", Identities: []string{webID}}}},
	})
	l := &Layer{Policies: p}
	chain := pipeline.NewChain(l)
	conn := &pipeline.Conn{Client: netip.MustParseAddrPort("10.0.0.9:41000"), OrigDst: netip.MustParseAddrPort("10.0.0.2:8080"), TLS: meshed(webID)}
	term := &terminal{}
	var x pipeline.Exchange
	b.ReportAllocs()
	for b.Loop() {
		x.Reset(conn, pipeline.HTTP1, time.Time{})
		if err := chain.Serve(context.Background(), &x, term); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRequireIdentity: ports listed in INBOUND_PORTS_REQUIRE_IDENTITY refuse
// clients without a mesh identity even when the policy allows everyone.
func TestRequireIdentity(t *testing.T) {
	p, err := NewPolicies("all-unauthenticated", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.RequireIdentity = func(port uint16) bool { return port == 9090 }
	client := netip.MustParseAddrPort("10.0.0.9:41000")
	plain := transport.NoIdentity("no_tls_from_remote")
	for _, tc := range []struct {
		port uint16
		tls  transport.TLS
		want bool
	}{
		{9090, plain, false},
		{9090, meshed(otherID), true},
		{8080, plain, true},
	} {
		if got := p.AuthorizeTCP(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), tc.port), client, tc.tls); got != tc.want {
			t.Errorf("port %d, tls %v: allowed %v, want %v", tc.port, tc.tls.Mode, got, tc.want)
		}
	}
}

// TestRequestMetricsLabels: request_total and response_total of inbound
// requests carry the decision's srv_* and (when allowed) authz_* labels.
func TestRequestMetricsLabels(t *testing.T) {
	client := netip.MustParseAddrPort("10.0.0.9:41000")
	tests := []struct {
		name       string
		port       uint16
		tls        transport.TLS
		want       map[string]string
		wantAbsent string
	}{
		{"allowed by policy", 8080, meshed(webID), map[string]string{
			"srv_group": "policy.linkerd.io", "srv_kind": "server", "srv_name": "web-http", "srv_port": "8080",
			"authz_group": "policy.linkerd.io", "authz_kind": "authorizationpolicy", "authz_name": "web-only"}, ""},
		{"default", 9090, meshed(otherID), map[string]string{
			"srv_group": "", "srv_kind": "default", "srv_name": "all-unauthenticated", "srv_port": "9090",
			"authz_kind": "default", "authz_name": "all-unauthenticated"}, ""},
		{"denied", 8080, meshed(otherID), map[string]string{
			"srv_kind": "server", "srv_name": "web-http", "status_code": "403"}, "authz_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := metrics.NewRegistry()
			chain := pipeline.NewChain(&pipeline.Metrics{Registry: reg, Direction: transport.Inbound},
				&Layer{Policies: webOnly(t, "all-unauthenticated", reg)})
			conn := &pipeline.Conn{Client: client, OrigDst: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), tt.port), TLS: tt.tls}
			for range 2 { // the second request uses the connection's cached metrics
				var x pipeline.Exchange
				x.Reset(conn, pipeline.HTTP1, time.Now())
				err := chain.Serve(context.Background(), &x, &terminal{})
				if err != nil {
					x.Fail(0, err)
				}
				x.Finish(nil)
			}
			for _, family := range []string{"request_total", "response_total"} {
				if n := countFamily(t, reg, family); n != 2 {
					t.Errorf("%s = %v, want 2", family, n)
				}
				got := labelsOf(t, reg, family)
				for k, v := range tt.want {
					if k == "status_code" && family == "request_total" {
						continue
					}
					if got[k] != v {
						t.Errorf("%s label %s = %q, want %q (all: %v)", family, k, got[k], v, got)
					}
				}
				if _, ok := got[tt.wantAbsent]; tt.wantAbsent != "" && ok {
					t.Errorf("%s has label %s: %v", family, tt.wantAbsent, got)
				}
			}
		})
	}
}

type headers map[string]string

func (h headers) Get(name string) string { return h[name] }

// TestLayerRoutes: on a port with HTTPRoutes a request is matched to a
// route (none: 404, gRPC NOT_FOUND) and authorized by the route's
// authorizations; route_* labels say which.
func TestLayerRoutes(t *testing.T) {
	cluster, _ := inboundpolicy.ParseNetworks("10.0.0.0/8")
	route := func(name, exact string, ids ...string) inboundpolicy.Route {
		r := inboundpolicy.Route{Group: "policy.linkerd.io", Name: name,
			Matches: []inboundpolicy.RouteMatch{{PathType: "Exact", Path: exact}}}
		for _, id := range ids {
			r.Authorizations = append(r.Authorizations, inboundpolicy.Authorization{Kind: inboundpolicy.KindAuthorizationPolicy, Name: name + "-authz", Identities: []string{id}})
		}
		return r
	}
	tests := []struct {
		name       string
		path       string
		tls        transport.TLS
		grpc       bool
		wantStatus int // 0: forwarded
		wantGRPC   int32
		wantRoute  string
		wantAuthz  string
	}{
		{"route allows web", "/vote", meshed(webID), false, 0, -1, "vote", "vote-authz"},
		{"route refuses other", "/vote", meshed(otherID), false, http.StatusForbidden, -1, "vote", ""},
		{"other route allows other", "/list", meshed(otherID), false, 0, -1, "list", "list-authz"},
		{"no route", "/admin", meshed(webID), false, http.StatusNotFound, -1, "", ""},
		{"no route gRPC", "/admin", meshed(webID), true, 0, 5, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := metrics.NewRegistry()
			p, err := NewPolicies("deny", cluster, reg)
			if err != nil {
				t.Fatal(err)
			}
			p.Set(inboundpolicy.Default("deny", cluster), map[uint16]inboundpolicy.Port{
				8080: {Port: 8080, ServerKind: inboundpolicy.KindServer, ServerName: "web-http",
					Routes: []inboundpolicy.Route{route("vote", "/vote", webID), route("list", "/list", otherID)}},
			})
			chain := pipeline.NewChain(&pipeline.Metrics{Registry: reg, Direction: transport.Inbound}, &Layer{Policies: p})
			conn := &pipeline.Conn{Client: netip.MustParseAddrPort("10.0.0.9:41000"), OrigDst: netip.MustParseAddrPort("10.0.0.2:8080"), TLS: tt.tls}
			var x pipeline.Exchange
			x.Reset(conn, pipeline.HTTP1, time.Now())
			x.Method, x.Path, x.GRPC, x.Header = "POST", tt.path, tt.grpc, headers{}
			term := &terminal{}
			err = chain.Serve(context.Background(), &x, term)
			if err != nil {
				x.Fail(0, err)
			}
			x.Finish(nil)
			switch {
			case tt.wantStatus == 0 && tt.wantGRPC < 0:
				if err != nil || term.calls != 1 {
					t.Fatalf("err %v, forwarded %d; want forwarded", err, term.calls)
				}
			case tt.wantGRPC >= 0:
				if x.GRPCStatus != tt.wantGRPC || term.calls != 0 {
					t.Fatalf("grpc-status %d, forwarded %d; want %d", x.GRPCStatus, term.calls, tt.wantGRPC)
				}
			default:
				if x.Status != tt.wantStatus || term.calls != 0 {
					t.Fatalf("status %d, forwarded %d; want %d", x.Status, term.calls, tt.wantStatus)
				}
			}
			if tt.wantRoute == "" {
				if n := countFamily(t, reg, HTTPAllow) + countFamily(t, reg, HTTPDeny); n != 0 {
					t.Errorf("a request without a route counted as an authorization decision")
				}
				return
			}
			family := HTTPAllow
			if tt.wantAuthz == "" {
				family = HTTPDeny
			}
			for _, f := range []string{family, "response_total"} {
				got := labelsOf(t, reg, f)
				if got["route_kind"] != "HTTPRoute" || got["route_name"] != tt.wantRoute || got["route_group"] != "policy.linkerd.io" || got["authz_name"] != tt.wantAuthz {
					t.Errorf("%s labels = %v, want route %s authz %q", f, got, tt.wantRoute, tt.wantAuthz)
				}
			}
		})
	}
}
