package destination

import (
	"cmp"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/apis/split"
	"github.com/linkerd-go/linkerd/pkg/routefilter"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
)

// serviceAuthority is a Service's authority as proxies ask for it:
// name.namespace.svc.domain, with ":port" when port is not 0.
func serviceAuthority(name, namespace, domain string, port uint32) string {
	host := name + "." + namespace + ".svc." + domain
	if port == 0 {
		return host
	}
	return net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
}

// apexIs reports whether a TrafficSplit's spec.service names Service
// namespace/name: its name, or its FQDN (with or without a trailing dot).
func apexIs(apex, name, namespace, domain string) bool {
	apex = strings.TrimSuffix(apex, ".")
	return apex == name || apex == name+"."+namespace+".svc."+domain || apex == name+"."+namespace
}

// TrafficSplitOverrides turns a TrafficSplit into the dstOverrides of its
// apex's profile, as Linkerd 2.11 did: each backend Service, in the split's
// namespace, on the requested port (0: the proxy keeps the request's), with
// its weight in thousandths. ts must be valid.
func TrafficSplitOverrides(ts *split.TrafficSplit, domain string, port uint32) []*destinationv1.WeightedDst {
	out := make([]*destinationv1.WeightedDst, 0, len(ts.Spec.Backends))
	for _, b := range ts.Spec.Backends {
		w := b.Weight.MilliValue()
		w = min(max(w, 0), math.MaxUint32)
		name := strings.TrimSuffix(b.Service, ".")
		var authority string
		if strings.Contains(name, ".") {
			authority = name // already qualified
			if port != 0 {
				authority = net.JoinHostPort(name, strconv.FormatUint(uint64(port), 10))
			}
		} else {
			authority = serviceAuthority(name, ts.Namespace, domain, port)
		}
		out = append(out, &destinationv1.WeightedDst{Authority: authority, WeightMilli: uint32(w)})
	}
	return out
}

// matchRank orders the matches of HTTPRoute rules as the Gateway API does:
// an exact path first, then the longest path (prefix or regular
// expression), a method, more header matches, more query parameter
// matches; ties keep the routes' and rules' order.
type matchRank struct {
	exact         bool
	pathLen       int
	method        bool
	headers, qps  int
	route, ruleIx int
}

func compareRank(a, b matchRank) int {
	if a.exact != b.exact {
		if a.exact {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(b.pathLen, a.pathLen); c != 0 {
		return c
	}
	if a.method != b.method {
		if a.method {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(b.headers, a.headers); c != 0 {
		return c
	}
	if c := cmp.Compare(b.qps, a.qps); c != 0 {
		return c
	}
	if c := cmp.Compare(a.route, b.route); c != 0 {
		return c
	}
	return cmp.Compare(a.ruleIx, b.ruleIx)
}

// attaches reports whether route r applies to Service namespace/name on
// port: a parentRef names the Service (kind Service, core group) with no
// port or this port (port 0: any).
func attaches(r *policy.HTTPRoute, namespace, name string, port uint32) bool {
	for i := range r.Spec.ParentRefs {
		p := &r.Spec.ParentRefs[i]
		ns := cmp.Or(p.Namespace, r.Namespace)
		if p.IsServiceParent() && p.Name == name && ns == namespace && (p.Port == 0 || port == 0 || uint32(p.Port) == port) {
			return true
		}
	}
	return false
}

// BackendRoutes turns the HTTPRoutes attached to Service namespace/name on
// port into backend routes (the GAMMA pattern): one per rule match (a rule
// without matches matches every request), its condition the match's path,
// method, headers and query parameters, its backends the rule's
// backendRefs by weight (a backend's port, or the requested one); most
// specific first. routes must be valid and in precedence order (oldest
// first).
func BackendRoutes(routes []*policy.HTTPRoute, namespace, name, domain string, port uint32) []*destinationv1.BackendRoute {
	type ranked struct {
		rank matchRank
		br   *destinationv1.BackendRoute
	}
	var all []ranked
	for ri, r := range routes {
		if !attaches(r, namespace, name, port) {
			continue
		}
		for i := range r.Spec.Rules {
			rule := &r.Spec.Rules[i]
			backends := backendDsts(r, rule, domain, port)
			routeName := fmt.Sprintf("%s/%s/rules[%d]", r.Namespace, r.Name, i)
			if rule.Name != "" {
				routeName = fmt.Sprintf("%s/%s/%s", r.Namespace, r.Name, rule.Name)
			}
			matches := rule.Matches
			if len(matches) == 0 {
				matches = []policy.HTTPRouteMatch{{}}
			}
			timeout := ruleTimeout(rule)
			filters := RouteFilters(rule.Filters)
			for _, m := range matches {
				cond, rank := matchCondition(&m)
				rank.route, rank.ruleIx = ri, i
				all = append(all, ranked{rank, &destinationv1.BackendRoute{Name: routeName, Condition: cond, Backends: backends, TimeoutMs: timeout, Filters: filters}})
			}
		}
	}
	slices.SortStableFunc(all, func(a, b ranked) int { return compareRank(a.rank, b.rank) })
	out := make([]*destinationv1.BackendRoute, len(all))
	for i, a := range all {
		out[i] = a.br
	}
	return out
}

// RouteFilters turns an HTTPRoute rule's filters into the destination
// API's (routefilter.ToProto).
func RouteFilters(fs []policy.HTTPRouteFilter) []*destinationv1.RouteFilter {
	return routefilter.ToProto(fs)
}

// ruleTimeout is a rule's request timeout in milliseconds (timeouts.request,
// else timeouts.backendRequest); 0: none. The rule is valid.
func ruleTimeout(rule *policy.HTTPRouteRule) int64 {
	t := rule.Timeouts
	if t == nil {
		return 0
	}
	for _, s := range []string{t.Request, t.BackendRequest} {
		if s == "" {
			continue
		}
		if d, err := policy.ParseGatewayDuration(s); err == nil && d > 0 {
			return d.Milliseconds()
		}
	}
	return 0
}

func backendDsts(r *policy.HTTPRoute, rule *policy.HTTPRouteRule, domain string, port uint32) []*destinationv1.WeightedDst {
	var out []*destinationv1.WeightedDst
	for j := range rule.BackendRefs {
		b := &rule.BackendRefs[j]
		w := b.EffectiveWeight()
		if w <= 0 {
			continue
		}
		p := port
		if b.Port > 0 {
			p = uint32(b.Port)
		}
		out = append(out, &destinationv1.WeightedDst{
			Authority:   serviceAuthority(b.Name, cmp.Or(b.Namespace, r.Namespace), domain, p),
			WeightMilli: uint32(min(int64(w)*1000, math.MaxUint32)),
		})
	}
	return out
}

// matchCondition returns the condition of an HTTPRoute match and its rank.
func matchCondition(m *policy.HTTPRouteMatch) (*destinationv1.RequestMatch, matchRank) {
	cond := &destinationv1.RequestMatch{Method: m.Method}
	var rank matchRank
	typ, value := policy.PathMatchPathPrefix, "/"
	if m.Path != nil {
		typ, value = cmp.Or(m.Path.Type, typ), cmp.Or(m.Path.Value, value)
	}
	switch typ {
	case policy.PathMatchExact:
		cond.PathExact, rank.exact = value, true
	case policy.PathMatchRegularExpression:
		cond.PathRegex = value
	default:
		cond.PathPrefix = value
	}
	rank.pathLen, rank.method = len(value), m.Method != ""
	for _, h := range m.Headers {
		cond.Headers = append(cond.Headers, &destinationv1.HeaderMatch{Name: h.Name, Value: h.Value, Regex: h.Type == policy.HeaderMatchRegularExpression})
	}
	for _, q := range m.QueryParams {
		cond.QueryParams = append(cond.QueryParams, &destinationv1.HeaderMatch{Name: q.Name, Value: q.Value, Regex: q.Type == policy.HeaderMatchRegularExpression})
	}
	rank.headers, rank.qps = len(m.Headers), len(m.QueryParams)
	return cond, rank
}

// validHTTPRoute checks a stored HTTPRoute.
func validHTTPRoute(r *policy.HTTPRoute) error {
	if why := r.Annotations[store.InvalidAnnotation]; why != "" {
		return fmt.Errorf("HTTPRoute %s/%s: %s", r.Namespace, r.Name, why)
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("HTTPRoute %s/%s: %w", r.Namespace, r.Name, err)
	}
	return nil
}

// validTrafficSplit checks a stored TrafficSplit.
func validTrafficSplit(ts *split.TrafficSplit) error {
	if why := ts.Annotations[store.InvalidAnnotation]; why != "" {
		return fmt.Errorf("TrafficSplit %s/%s: %s", ts.Namespace, ts.Name, why)
	}
	if err := ts.Validate(); err != nil {
		return fmt.Errorf("TrafficSplit %s/%s: %w", ts.Namespace, ts.Name, err)
	}
	return nil
}

// routePrecedence orders HTTPRoutes as the Gateway API resolves conflicts:
// the oldest first, then by namespace and name.
func routePrecedence(a, b *policy.HTTPRoute) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// applySplits merges the TrafficSplit and the HTTPRoutes of Service
// namespace/name (port: the requested one, 0 when unknown) into p: a
// TrafficSplit whose apex is the Service replaces the ServiceProfile's
// dstOverrides (the first by name when several do), and the HTTPRoutes
// attached to it give the backend routes. An invalid resource is an error
// (the caller keeps the last good profile).
func (s *Server) applySplits(p *destinationv1.Profile, namespace, name string, port uint32) error {
	domain := s.cfg.ClusterDomain
	for _, ts := range s.store.TrafficSplits(namespace) {
		if !apexIs(ts.Spec.Service, name, namespace, domain) {
			continue
		}
		if err := validTrafficSplit(ts); err != nil {
			return err
		}
		p.DstOverrides = TrafficSplitOverrides(ts, domain, port)
		break
	}
	routes := s.store.HTTPRoutesFor(namespace, name)
	for _, r := range routes {
		if err := validHTTPRoute(r); err != nil {
			return err
		}
	}
	routes = slices.Clone(routes)
	slices.SortStableFunc(routes, routePrecedence)
	p.BackendRoutes = BackendRoutes(routes, namespace, name, domain, port)
	return nil
}
