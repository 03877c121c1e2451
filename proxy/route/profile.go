// Package route is the outbound proxy's notion of a route: the service
// profile of a destination (from destination's GetProfile, cached per
// authority, the last valid one kept), the matching of requests to its
// routes, and the Layer that applies a route to a request: per-route
// metrics (route_request_total, route_response_total,
// route_response_latency_ms by dst and rt_route, classified by the route's
// response classes) and the route's timeout (504 with l5d-proxy-error).
package route

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// Profile is a compiled service profile.
type Profile struct {
	// Name is the ServiceProfile's name (the service's FQDN).
	Name string
	// Dst is the dst label of the routes' metrics (name:port).
	Dst    string
	Routes []*Route
	// Budget bounds the retries of the profile's routes; nil: the default.
	Budget *BudgetParams
	budget *Budget
	// overrides split the destination's traffic (dstOverrides), by weight.
	overrides []override
	total     uint64
}

type override struct {
	authority string
	weight    uint64
}

// Route is one route of a profile.
type Route struct {
	Name      string
	match     requestMatcher
	classes   []responseClass
	Retryable bool
	// Timeout bounds the wait for the response head; 0: none.
	Timeout time.Duration
	labels  metrics.Labels
	fault   *fault
	// eps caches the route's metrics per endpoint (*balance.Endpoint ->
	// *routeMetrics); it goes with the profile when that changes.
	eps sync.Map
}

// fault is a route's fault injection: fractions (0..1) of the requests.
type fault struct {
	abort       float64
	abortStatus int
	delay       float64
	delayBy     time.Duration
}

// Compile checks and compiles a profile from the destination API; dst is
// the dst label of its metrics. A regular expression that does not
// compile is an error (the destination service validates profiles, so
// this only happens with a broken control plane).
func Compile(p *destinationv1.Profile, dst string) (*Profile, error) {
	out := &Profile{Name: p.GetFullyQualifiedName(), Dst: dst}
	for i, r := range p.GetRoutes() {
		m, err := compileRequest(r.GetCondition(), 0)
		if err != nil {
			return nil, fmt.Errorf("route %d (%q): %w", i, r.GetName(), err)
		}
		route := &Route{
			Name: r.GetName(), match: m, Retryable: r.GetIsRetryable(),
			Timeout: time.Duration(r.GetTimeoutMs()) * time.Millisecond,
			labels: metrics.Labels{{Name: "direction", Value: "outbound"},
				{Name: "dst", Value: dst}, {Name: "rt_route", Value: r.GetName()}},
		}
		if f := r.GetFault(); f != nil {
			route.fault = &fault{abort: f.GetAbortPercent() / 100, abortStatus: int(f.GetAbortHttpStatus()),
				delay: f.GetDelayPercent() / 100, delayBy: time.Duration(f.GetDelayMs()) * time.Millisecond}
			if route.fault.abort > 0 && (route.fault.abortStatus < 100 || route.fault.abortStatus > 599) {
				return nil, fmt.Errorf("route %d (%q): fault: abort status %d is not an HTTP status", i, r.GetName(), route.fault.abortStatus)
			}
		}
		for j, c := range r.GetResponseClasses() {
			rm, err := compileResponse(c.GetCondition(), 0)
			if err != nil {
				return nil, fmt.Errorf("route %d (%q): response class %d: %w", i, r.GetName(), j, err)
			}
			route.classes = append(route.classes, responseClass{match: rm, failure: c.GetIsFailure()})
		}
		out.Routes = append(out.Routes, route)
	}
	bp := DefaultBudget
	if b := p.GetRetryBudget(); b != nil {
		bp = BudgetParams{
			RetryRatio:          float64(b.GetRetryRatio()),
			MinRetriesPerSecond: int(b.GetMinRetriesPerSecond()),
			TTL:                 time.Duration(b.GetTtlMs()) * time.Millisecond,
		}
		out.Budget = &bp
	}
	out.budget = NewBudget(bp, nil)
	for _, d := range p.GetDstOverrides() {
		if d.GetWeightMilli() == 0 || d.GetAuthority() == "" {
			continue
		}
		out.overrides = append(out.overrides, override{authority: d.GetAuthority(), weight: uint64(d.GetWeightMilli())})
		out.total += uint64(d.GetWeightMilli())
	}
	return out, nil
}

// Split picks the authority a request for authority goes to: one of the
// profile's dstOverrides by weight (r is a uniform draw in [0, 1)), with
// authority's port (or 80) when the override names none; authority itself when
// the profile has no overrides.
func (p *Profile) Split(authority string, r float64) string {
	if p == nil || p.total == 0 {
		return authority
	}
	n := uint64(r * float64(p.total))
	for _, o := range p.overrides {
		if n < o.weight {
			return withPort(o.authority, authority)
		}
		n -= o.weight
	}
	return withPort(p.overrides[len(p.overrides)-1].authority, authority)
}

// withPort gives host the port of from when it has none (80 when from
// has none either, as discovery assumes).
func withPort(host, from string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if _, p, err := net.SplitHostPort(from); err == nil {
		port = p
	}
	return net.JoinHostPort(host, port)
}

// Match returns the first route matching the request, nil when none does.
func (p *Profile) Match(method, path string) *Route {
	if p == nil {
		return nil
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for _, r := range p.Routes {
		if r.match.matches(method, path) {
			return r
		}
	}
	return nil
}

// maxDepth bounds the nesting of conditions (the validator allows 32).
const maxDepth = 64

type requestMatcher struct {
	method string
	path   *regexp.Regexp
	all    []requestMatcher
	any    []requestMatcher
	not    *requestMatcher
	// empty: a condition with nothing set never matches.
	empty bool
}

func compileRequest(m *destinationv1.RequestMatch, depth int) (requestMatcher, error) {
	if depth > maxDepth {
		return requestMatcher{}, fmt.Errorf("conditions nested more than %d deep", maxDepth)
	}
	if m == nil {
		return requestMatcher{empty: true}, nil
	}
	out := requestMatcher{method: m.GetMethod()}
	if re := m.GetPathRegex(); re != "" {
		c, err := regexp.Compile("^(?:" + re + ")$")
		if err != nil {
			return requestMatcher{}, fmt.Errorf("pathRegex %q: %w", re, err)
		}
		out.path = c
	}
	for _, c := range m.GetAll() {
		cm, err := compileRequest(c, depth+1)
		if err != nil {
			return requestMatcher{}, err
		}
		out.all = append(out.all, cm)
	}
	for _, c := range m.GetAny() {
		cm, err := compileRequest(c, depth+1)
		if err != nil {
			return requestMatcher{}, err
		}
		out.any = append(out.any, cm)
	}
	if m.GetNot() != nil {
		cm, err := compileRequest(m.GetNot(), depth+1)
		if err != nil {
			return requestMatcher{}, err
		}
		out.not = &cm
	}
	out.empty = out.method == "" && out.path == nil && m.GetAll() == nil && m.GetAny() == nil && out.not == nil
	return out, nil
}

// matches reports whether every part the condition sets matches.
func (m *requestMatcher) matches(method, path string) bool {
	if m.empty {
		return false
	}
	if m.method != "" && m.method != method {
		return false
	}
	if m.path != nil && !m.path.MatchString(path) {
		return false
	}
	for i := range m.all {
		if !m.all[i].matches(method, path) {
			return false
		}
	}
	if len(m.any) > 0 {
		ok := false
		for i := range m.any {
			if m.any[i].matches(method, path) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if m.not != nil && m.not.matches(method, path) {
		return false
	}
	return true
}

type responseClass struct {
	match   responseMatcher
	failure bool
}

type responseMatcher struct {
	lo, hi int
	all    []responseMatcher
	any    []responseMatcher
	not    *responseMatcher
	empty  bool
}

func compileResponse(m *destinationv1.ResponseMatch, depth int) (responseMatcher, error) {
	if depth > maxDepth {
		return responseMatcher{}, fmt.Errorf("conditions nested more than %d deep", maxDepth)
	}
	if m == nil {
		return responseMatcher{empty: true}, nil
	}
	var out responseMatcher
	if s := m.GetStatus(); s != nil {
		out.lo, out.hi = int(s.GetMin()), int(s.GetMax())
		if out.lo == 0 {
			out.lo = 100
		}
		if out.hi == 0 {
			out.hi = 599
		}
	}
	for _, c := range m.GetAll() {
		cm, err := compileResponse(c, depth+1)
		if err != nil {
			return responseMatcher{}, err
		}
		out.all = append(out.all, cm)
	}
	for _, c := range m.GetAny() {
		cm, err := compileResponse(c, depth+1)
		if err != nil {
			return responseMatcher{}, err
		}
		out.any = append(out.any, cm)
	}
	if m.GetNot() != nil {
		cm, err := compileResponse(m.GetNot(), depth+1)
		if err != nil {
			return responseMatcher{}, err
		}
		out.not = &cm
	}
	out.empty = m.GetStatus() == nil && m.GetAll() == nil && m.GetAny() == nil && out.not == nil
	return out, nil
}

func (m *responseMatcher) matches(status int) bool {
	if m.empty {
		return false
	}
	if m.lo != 0 && (status < m.lo || status > m.hi) {
		return false
	}
	for i := range m.all {
		if !m.all[i].matches(status) {
			return false
		}
	}
	if len(m.any) > 0 {
		ok := false
		for i := range m.any {
			if m.any[i].matches(status) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if m.not != nil && m.not.matches(status) {
		return false
	}
	return true
}

// Classify returns the response_total labels of a finished exchange on the
// route: the first response class matching the status decides failure;
// without one (or without a response) the proxy's default applies (5xx,
// a gRPC error or a failed exchange are failures).
func (r *Route) Classify(status int, grpcStatus int32, err error) metrics.ResponseKey {
	k := pipeline.Classify(status, grpcStatus, err)
	if err != nil || status == 0 {
		return k
	}
	for i := range r.classes {
		if r.classes[i].match.matches(status) {
			k.Failure = r.classes[i].failure
			return k
		}
	}
	return k
}
