// Package route is the outbound proxy's notion of a route: the service
// profile of a destination (from destination's GetProfile, cached per
// authority, the last valid one kept), the matching of requests to its
// routes, and the Layer that applies a route to a request: per-route
// metrics (route_request_total, route_response_total,
// route_response_latency_ms by dst and rt_route, classified by the route's
// response classes), the route's timeout (504 with l5d-proxy-error) and
// its HTTPRoute rule's filters (Filters).
package route

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
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
	// backendRoutes (from HTTPRoutes) pick the backends of the requests
	// they match, before the overrides.
	backendRoutes []backendRoute
	// ruleRoutes are the backendRoutes as routes (metrics, timeout), for
	// the requests no ServiceProfile route matches.
	ruleRoutes []*Route
}

type override struct {
	authority string
	weight    uint64
}

// backendRoute is one match of an HTTPRoute rule and its backends.
type backendRoute struct {
	name     string
	match    requestMatcher
	backends []override
	total    uint64
	// filters are the rule's filters; nil: none.
	filters *Filters
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
	// fams caches the route's metrics without endpoint labels, for the
	// registry that made them.
	fams atomic.Pointer[routeFams]
}

// routeFams are a route's metric families in one registry.
type routeFams struct {
	reg       *metrics.Registry
	m, actual *metrics.HTTP
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
	out.overrides, out.total = compileOverrides(p.GetDstOverrides())
	for i, br := range p.GetBackendRoutes() {
		m, err := compileRequest(br.GetCondition(), 0)
		if err != nil {
			return nil, fmt.Errorf("backend route %d (%q): %w", i, br.GetName(), err)
		}
		b := backendRoute{name: br.GetName(), match: m}
		if b.filters, err = compileFilters(br); err != nil {
			return nil, fmt.Errorf("backend route %d (%q): %w", i, br.GetName(), err)
		}
		b.backends, b.total = compileOverrides(br.GetBackends())
		if len(br.GetBackends()) > 0 && b.total == 0 {
			return nil, fmt.Errorf("backend route %d (%q): the backends' weights sum to 0", i, br.GetName())
		}
		out.backendRoutes = append(out.backendRoutes, b)
		out.ruleRoutes = append(out.ruleRoutes, &Route{
			Name: br.GetName(), match: m, Timeout: time.Duration(br.GetTimeoutMs()) * time.Millisecond,
			labels: metrics.Labels{{Name: "direction", Value: "outbound"},
				{Name: "dst", Value: dst}, {Name: "rt_route", Value: br.GetName()}},
		})
	}
	return out, nil
}

func compileOverrides(ds []*destinationv1.WeightedDst) ([]override, uint64) {
	var out []override
	var total uint64
	for _, d := range ds {
		if d.GetWeightMilli() == 0 || d.GetAuthority() == "" {
			continue
		}
		out = append(out, override{authority: d.GetAuthority(), weight: uint64(d.GetWeightMilli())})
		total += uint64(d.GetWeightMilli())
	}
	return out, total
}

// Splits reports whether the profile may send a request elsewhere than its
// authority (overrides or backend routes).
func (p *Profile) Splits() bool {
	return p != nil && (p.total > 0 || len(p.backendRoutes) > 0)
}

// Backend picks the authority request r for authority goes to: the
// backends of the first backend route matching r, by weight (draw is
// uniform in [0, 1)), or authority itself when that route has none; without
// a matching backend route, Split's choice.
func (p *Profile) Backend(r *Request, authority string, draw float64) string {
	if p == nil {
		return authority
	}
	if br := p.matchBackend(r); br != nil {
		return pick(br.backends, br.total, authority, draw)
	}
	return p.Split(authority, draw)
}

// matchBackend returns the first backend route matching r, nil when none does.
func (p *Profile) matchBackend(r *Request) *backendRoute {
	for i := range p.backendRoutes {
		br := &p.backendRoutes[i]
		if br.match.matches(r) {
			return br
		}
	}
	return nil
}

// Split picks the authority a request for authority goes to: one of the
// profile's dstOverrides by weight (r is a uniform draw in [0, 1)), with
// authority's port (or 80) when the override names none; authority itself when
// the profile has no overrides.
func (p *Profile) Split(authority string, r float64) string {
	if p == nil {
		return authority
	}
	return pick(p.overrides, p.total, authority, r)
}

func pick(os []override, total uint64, authority string, r float64) string {
	if total == 0 {
		return authority
	}
	n := uint64(r * float64(total))
	for _, o := range os {
		if n < o.weight {
			return withPort(o.authority, authority)
		}
		n -= o.weight
	}
	return withPort(os[len(os)-1].authority, authority)
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

// Request is what route matching reads of a request.
type Request struct {
	Method string
	// Target is the request target (origin form: path and query).
	Target string
	// Header reads the request's header fields; nil: none.
	Header pipeline.HeaderReader

	path     string
	query    url.Values
	queryErr bool
	split    bool
}

// pathOnly returns the path without its query and fragment.
func (r *Request) pathOnly() string {
	if !r.split {
		r.path = r.Target
		if i := strings.IndexAny(r.path, "?#"); i >= 0 {
			r.path = r.path[:i]
		}
		r.split = true
	}
	return r.path
}

// queryValue returns the first value of the query parameter name.
func (r *Request) queryValue(name string) (string, bool) {
	if r.query == nil && !r.queryErr {
		q := ""
		if i := strings.IndexByte(r.Target, '?'); i >= 0 {
			q = r.Target[i+1:]
			if j := strings.IndexByte(q, '#'); j >= 0 {
				q = q[:j]
			}
		}
		v, err := url.ParseQuery(q)
		r.query, r.queryErr = v, err != nil && len(v) == 0
	}
	vs := r.query[name]
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

func (r *Request) header(name string) string {
	if r.Header == nil {
		return ""
	}
	return r.Header.Get(name)
}

// Match returns the first route matching the request, nil when none does.
func (p *Profile) Match(method, path string) *Route {
	return p.MatchRequest(&Request{Method: method, Target: path})
}

// MatchRequest returns the first route matching r, nil when none does:
// the ServiceProfile's routes first, then the HTTPRoute rules'.
func (p *Profile) MatchRequest(r *Request) *Route {
	if p == nil {
		return nil
	}
	for _, rt := range p.Routes {
		if rt.match.matches(r) {
			return rt
		}
	}
	for _, rt := range p.ruleRoutes {
		if rt.match.matches(r) {
			return rt
		}
	}
	return nil
}

// maxDepth bounds the nesting of conditions (the validator allows 32).
const maxDepth = 64

type requestMatcher struct {
	method string
	path   *regexp.Regexp
	// pathLit is a literal every path path matches begins with: checked
	// first, it spares running the regular expression on most paths.
	pathLit    string
	pathExact  string
	pathPrefix string
	hasPrefix  bool
	headers    []valueMatcher
	query      []valueMatcher
	all        []requestMatcher
	any        []requestMatcher
	not        *requestMatcher
	// empty: a condition with nothing set never matches.
	empty bool
}

// valueMatcher matches a header or query parameter value.
type valueMatcher struct {
	name  string
	value string
	re    *regexp.Regexp
}

func (v *valueMatcher) matches(val string, ok bool) bool {
	if !ok {
		return false
	}
	if v.re != nil {
		return v.re.MatchString(val)
	}
	return val == v.value
}

func compileValues(ms []*destinationv1.HeaderMatch, what string) ([]valueMatcher, error) {
	var out []valueMatcher
	for _, m := range ms {
		v := valueMatcher{name: m.GetName(), value: m.GetValue()}
		if v.name == "" {
			return nil, fmt.Errorf("%s match without a name", what)
		}
		if m.GetRegex() {
			re, err := regexp.Compile("^(?:" + m.GetValue() + ")$")
			if err != nil {
				return nil, fmt.Errorf("%s %q regex: %w", what, m.GetName(), err)
			}
			v.re = re
		}
		out = append(out, v)
	}
	return out, nil
}

func compileRequest(m *destinationv1.RequestMatch, depth int) (requestMatcher, error) {
	if depth > maxDepth {
		return requestMatcher{}, fmt.Errorf("conditions nested more than %d deep", maxDepth)
	}
	if m == nil {
		return requestMatcher{empty: true}, nil
	}
	out := requestMatcher{method: m.GetMethod(), pathExact: m.GetPathExact()}
	if re := m.GetPathRegex(); re != "" {
		c, err := regexp.Compile("^(?:" + re + ")$")
		if err != nil {
			return requestMatcher{}, fmt.Errorf("pathRegex %q: %w", re, err)
		}
		out.path = c
		out.pathLit, _ = c.LiteralPrefix()
	}
	if pp := m.GetPathPrefix(); pp != "" {
		out.pathPrefix, out.hasPrefix = strings.TrimRight(pp, "/"), true
	}
	var err error
	if out.headers, err = compileValues(m.GetHeaders(), "header"); err != nil {
		return requestMatcher{}, err
	}
	for i := range out.headers {
		out.headers[i].name = strings.ToLower(out.headers[i].name)
	}
	if out.query, err = compileValues(m.GetQueryParams(), "query parameter"); err != nil {
		return requestMatcher{}, err
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
	out.empty = out.method == "" && out.path == nil && out.pathExact == "" && !out.hasPrefix &&
		out.headers == nil && out.query == nil && m.GetAll() == nil && m.GetAny() == nil && out.not == nil
	return out, nil
}

// prefixMatches reports whether path starts with prefix's segments; prefix
// has no trailing "/" ("" is the root, matching every path).
func prefixMatches(prefix, path string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// matches reports whether every part the condition sets matches.
func (m *requestMatcher) matches(r *Request) bool {
	if m.empty {
		return false
	}
	if m.method != "" && m.method != r.Method {
		return false
	}
	if m.path != nil {
		p := r.pathOnly()
		if !strings.HasPrefix(p, m.pathLit) || !m.path.MatchString(p) {
			return false
		}
	}
	if m.pathExact != "" && m.pathExact != r.pathOnly() {
		return false
	}
	if m.hasPrefix && !prefixMatches(m.pathPrefix, r.pathOnly()) {
		return false
	}
	for i := range m.headers {
		v := r.header(m.headers[i].name)
		if !m.headers[i].matches(v, v != "") {
			return false
		}
	}
	for i := range m.query {
		if !m.query[i].matches(r.queryValue(m.query[i].name)) {
			return false
		}
	}
	for i := range m.all {
		if !m.all[i].matches(r) {
			return false
		}
	}
	if len(m.any) > 0 {
		ok := false
		for i := range m.any {
			if m.any[i].matches(r) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if m.not != nil && m.not.matches(r) {
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
