// Package authz enforces inbound authorization policy: which clients (by
// address and mesh identity) may use which of the application's ports. The
// policy per port comes from the policy controller's stream (Client) or,
// before its first answer or without a controller, from the default policy
// (LINKERD2_PROXY_INBOUND_DEFAULT_POLICY). HTTP requests are checked by
// Layer (one layer of the inbound chain: a denied request gets 403, gRPC
// PERMISSION_DENIED); TCP connections by Policies.AuthorizeTCP, which
// package inbound calls before forwarding (a denied connection is closed).
package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/route"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// Metric families.
const (
	HTTPAllow = "inbound_http_authz_allow_total"
	HTTPDeny  = "inbound_http_authz_deny_total"
	TCPAllow  = "inbound_tcp_authz_allow_total"
	TCPDeny   = "inbound_tcp_authz_deny_total"
)

// Policies is the proxy's current inbound policy. It is safe for
// concurrent use; Set replaces it atomically.
type Policies struct {
	Metrics *metrics.Registry
	// RequireIdentity, when set, names the ports that refuse clients
	// without a mesh identity whatever the policy says.
	RequireIdentity func(port uint16) bool
	cur             atomic.Pointer[state]

	// Typed maps (not sync.Map: hashing its interface keys costs more
	// than the check itself).
	mu           sync.RWMutex
	counters     map[counterKey]*metrics.Counter
	policyLabels map[policyKey]*pipeline.PolicyLabels
}

// counterKey identifies one series of the authz families.
type counterKey struct {
	family string
	target netip.AddrPort
	tls    transport.TLS
	policy *pipeline.PolicyLabels
}

// policyKey identifies the labels of one decision.
type policyKey struct {
	port                 uint16
	srvKind, srvName     string
	http                 bool
	routeGroup, route    string
	authzKind, authzName string
}

type state struct {
	def   inboundpolicy.Port
	ports map[uint16]inboundpolicy.Port
	// filters are the route filters of the policy's matches that have
	// any, compiled once per policy (the matches are shared by every
	// copy of a Port, so their addresses are stable keys).
	filters map[*inboundpolicy.RouteMatch]compiledFilters
}

// compiledFilters is a match's filters, or why they cannot apply.
type compiledFilters struct {
	f   *route.Filters
	err error
}

// NewPolicies returns the policies in force before the controller answers:
// the default policy name for every port.
func NewPolicies(defaultPolicy string, cluster []inboundpolicy.Network, reg *metrics.Registry) (*Policies, error) {
	if !policy.ValidDefaultPolicy(defaultPolicy) {
		return nil, fmt.Errorf("default inbound policy %q is not one of %v", defaultPolicy, policy.DefaultPolicies)
	}
	p := &Policies{Metrics: reg}
	p.Set(inboundpolicy.Default(defaultPolicy, cluster), nil)
	return p, nil
}

// Set replaces the policy: def for the ports not in ports.
func (p *Policies) Set(def inboundpolicy.Port, ports map[uint16]inboundpolicy.Port) {
	s := &state{def: def, ports: ports}
	s.compile(def)
	for _, pp := range ports {
		s.compile(pp)
	}
	p.cur.Store(s)
}

// compile compiles the filters of pp's route matches.
func (s *state) compile(pp inboundpolicy.Port) {
	for i := range pp.Routes {
		r := &pp.Routes[i]
		for j := range r.Matches {
			m := &r.Matches[j]
			if len(m.Filters) == 0 {
				continue
			}
			prefix := ""
			if m.PathType == policy.PathMatchPathPrefix {
				prefix = m.Path
			}
			f, err := route.NewFilters(m.Filters, prefix)
			if err != nil {
				err = fmt.Errorf("route %s: %w", r.Name, err)
			}
			if s.filters == nil {
				s.filters = map[*inboundpolicy.RouteMatch]compiledFilters{}
			}
			s.filters[m] = compiledFilters{f, err}
		}
	}
}

// Port returns the policy of port.
func (p *Policies) Port(port uint16) inboundpolicy.Port { return p.cur.Load().port(port) }

func (s *state) port(port uint16) inboundpolicy.Port {
	if pp, ok := s.ports[port]; ok {
		return pp
	}
	d := s.def
	d.Port = port
	return d
}

// Decision is the outcome of a check: the server and, when allowed, the authorization.
type Decision struct {
	Port inboundpolicy.Port
	// HTTP tells HTTP decisions (with route labels) from TCP ones.
	HTTP bool
	// Route is the HTTPRoute the request matched, nil when the port has none.
	Route *inboundpolicy.Route
	// Match is the Route's match that matched (its rule's filters).
	Match *inboundpolicy.RouteMatch
	Authz *inboundpolicy.Authorization
	// filters are Match's filters, compiled with the policy (nil f: none).
	filters compiledFilters
}

// Allowed reports whether the client was allowed.
func (d Decision) Allowed() bool { return d.Authz != nil }

// Protocol returns the Server's proxyProtocol for port ("" when none).
func (p *Policies) Protocol(port uint16) string { return p.Port(port).Protocol }

// check decides for a client of the application at target.
func (p *Policies) check(target, client netip.AddrPort, tls transport.TLS) Decision {
	pp := p.Port(target.Port())
	id, ok := p.identity(target, tls)
	if !ok {
		return Decision{Port: pp}
	}
	return Decision{Port: pp, Authz: pp.Authorize(client.Addr(), id)}
}

// identity returns the client's mesh identity ("" when none); false when
// the port requires one and the client has none.
func (p *Policies) identity(target netip.AddrPort, tls transport.TLS) (string, bool) {
	id := ""
	if tls.Mode == transport.TLSMeshed {
		id = tls.ID
	}
	if id == "" && p.RequireIdentity != nil && p.RequireIdentity(target.Port()) {
		return "", false
	}
	return id, true
}

// errNoRoute answers a request that matches none of its Server's routes.
var errNoRoute = &pipeline.StatusError{Status: http.StatusNotFound, GRPCStatus: 5, Err: errors.New("no route found")}

// checkHTTP decides for a request: on a port with HTTPRoutes, by the
// route it matches (errNoRoute when none), else by the port's authorizations.
func (p *Policies) checkHTTP(x *pipeline.Exchange) (Decision, error) {
	c := x.Conn
	st := p.cur.Load()
	pp := st.port(c.OrigDst.Port())
	d := Decision{Port: pp, HTTP: true}
	if len(pp.Routes) > 0 {
		if d.Route, d.Match = pp.Match(x.Method, x.Path, x.Header); d.Route == nil {
			return d, errNoRoute
		}
		d.filters = st.filters[d.Match]
	}
	id, ok := p.identity(c.OrigDst, c.TLS)
	switch {
	case !ok:
	case d.Route != nil:
		d.Authz = d.Route.Authorize(c.Client.Addr(), id)
	default:
		d.Authz = pp.Authorize(c.Client.Addr(), id)
	}
	return d, nil
}

// labels returns the labels of decision d on port as Linkerd names them:
// srv_*, route_* (HTTP) and, when allowed, authz_*. The same decision gets the same value.
func (p *Policies) labels(port uint16, d Decision) *pipeline.PolicyLabels {
	k := policyKey{port: port, srvKind: d.Port.ServerKind, srvName: d.Port.ServerName, http: d.HTTP}
	if d.Route != nil {
		k.routeGroup, k.route = d.Route.Group, d.Route.Name
	}
	if d.Authz != nil {
		k.authzKind, k.authzName = d.Authz.Kind, d.Authz.Name
	}
	p.mu.RLock()
	pl, ok := p.policyLabels[k]
	p.mu.RUnlock()
	if ok {
		return pl
	}
	group := ""
	if k.srvKind == inboundpolicy.KindServer {
		group = policy.GroupName
	}
	l := metrics.Labels{
		{Name: "srv_group", Value: group},
		{Name: "srv_kind", Value: k.srvKind},
		{Name: "srv_name", Value: k.srvName},
		{Name: "srv_port", Value: strconv.Itoa(int(port))},
	}
	if k.http {
		kind, name := inboundpolicy.KindDefault, inboundpolicy.DefaultRouteName
		if k.route != "" {
			kind, name = inboundpolicy.KindHTTPRoute, k.route
		}
		l = append(l,
			metrics.Label{Name: "route_group", Value: k.routeGroup},
			metrics.Label{Name: "route_kind", Value: kind},
			metrics.Label{Name: "route_name", Value: name},
		)
	}
	if d.Authz != nil {
		g := ""
		if k.authzKind != inboundpolicy.KindDefault {
			g = policy.GroupName
		}
		l = append(l,
			metrics.Label{Name: "authz_group", Value: g},
			metrics.Label{Name: "authz_kind", Value: k.authzKind},
			metrics.Label{Name: "authz_name", Value: k.authzName},
		)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pl, ok := p.policyLabels[k]; ok {
		return pl
	}
	if p.policyLabels == nil {
		p.policyLabels = map[policyKey]*pipeline.PolicyLabels{}
	}
	pl = &pipeline.PolicyLabels{Labels: l}
	p.policyLabels[k] = pl
	return pl
}

// count increments the family's series of a decision with labels pl.
func (p *Policies) count(family string, target netip.AddrPort, tls transport.TLS, pl *pipeline.PolicyLabels) {
	if p.Metrics == nil {
		return
	}
	k := counterKey{family: family, target: target, tls: tls, policy: pl}
	p.mu.RLock()
	c, ok := p.counters[k]
	p.mu.RUnlock()
	if !ok {
		l := transport.TargetLabels(target).With(tls.AcceptLabels()...).With(pl.Labels...)
		p.mu.Lock()
		if c, ok = p.counters[k]; !ok {
			if p.counters == nil {
				p.counters = map[counterKey]*metrics.Counter{}
			}
			c = p.Metrics.Counter(family, l)
			p.counters[k] = c
		}
		p.mu.Unlock()
	}
	c.Inc()
}

// AuthorizeTCP decides whether a TCP connection from client (with tls) to
// the application's target may be forwarded, and counts the decision.
func (p *Policies) AuthorizeTCP(target, client netip.AddrPort, tls transport.TLS) bool {
	d := p.check(target, client, tls)
	family := TCPDeny
	if d.Allowed() {
		family = TCPAllow
	}
	p.count(family, target, tls, p.labels(target.Port(), d))
	return d.Allowed()
}

// Layer is the inbound chain's authorization layer.
type Layer struct{ Policies *Policies }

// Serve forwards an authorized request and answers an unauthorized one
// with 403 (gRPC: PERMISSION_DENIED).
func (l *Layer) Serve(ctx context.Context, x *pipeline.Exchange) error {
	c := x.Conn
	d, err := l.Policies.checkHTTP(x)
	x.Policy = l.Policies.labels(c.OrigDst.Port(), d)
	if err != nil {
		return err
	}
	if !d.Allowed() {
		l.Policies.count(HTTPDeny, c.OrigDst, c.TLS, x.Policy)
		return &pipeline.StatusError{Status: http.StatusForbidden, GRPCStatus: 7,
			Err: fmt.Errorf("unauthorized request on %s %s", d.Port.ServerKind, d.Port.ServerName)}
	}
	l.Policies.count(HTTPAllow, c.OrigDst, c.TLS, x.Policy)
	// The route's filters, as Linkerd applies them server-side.
	if d.filters.err != nil {
		return d.filters.err
	}
	if d.filters.f != nil {
		if err := d.filters.f.Apply(x); err != nil {
			return err
		}
	}
	return x.Next(ctx)
}

var _ pipeline.Layer = (*Layer)(nil)
