package inboundpolicy

import (
	"cmp"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/routefilter"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
)

// KindHTTPRoute is the route_kind of an HTTPRoute; KindDefault that of the
// implicit route of a port without HTTPRoutes (named DefaultRouteName).
const (
	KindHTTPRoute    = "HTTPRoute"
	DefaultRouteName = "default"
)

// Route is an HTTPRoute attached to a Server: the requests it matches are
// authorized by its authorizations (the route's, then the Server's).
type Route struct {
	Group          string          `json:"group"`
	Name           string          `json:"name"`
	Matches        []RouteMatch    `json:"matches"`
	Authorizations []Authorization `json:"authorizations"`
}

// RouteMatch matches a request when every field it sets matches.
type RouteMatch struct {
	// PathType is policy.PathMatchExact, PathMatchPathPrefix,
	// PathMatchRegularExpression, or "" (any path).
	PathType    string        `json:"pathType,omitempty"`
	Path        string        `json:"path,omitempty"`
	Method      string        `json:"method,omitempty"`
	Headers     []HeaderMatch `json:"headers,omitempty"`
	QueryParams []HeaderMatch `json:"queryParams,omitempty"`
	// Filters are the filters of the match's rule, which the proxy
	// applies to the requests it authorizes.
	Filters []*destinationv1.RouteFilter `json:"-"`

	pathRE *regexp.Regexp
}

// HeaderMatch matches a header or query parameter by name and value
// (Type policy.HeaderMatchExact or HeaderMatchRegularExpression).
type HeaderMatch struct {
	Type  string `json:"type,omitempty"`
	Name  string `json:"name"`
	Value string `json:"value"`

	re *regexp.Regexp
}

// Headers reads a request's header fields (the first value, "" when absent).
type Headers interface{ Get(name string) string }

// Compile prepares the regular expressions of the route's matches; an
// error names the one that does not compile.
func (r *Route) Compile() error {
	for i := range r.Matches {
		m := &r.Matches[i]
		if m.PathType == policy.PathMatchRegularExpression {
			re, err := regexp.Compile(`^(?:` + m.Path + `)$`)
			if err != nil {
				return fmt.Errorf("route %s: path %q: %w", r.Name, m.Path, err)
			}
			m.pathRE = re
		}
		for _, hs := range [][]HeaderMatch{m.Headers, m.QueryParams} {
			for j := range hs {
				if hs[j].Type != policy.HeaderMatchRegularExpression {
					continue
				}
				re, err := regexp.Compile(`^(?:` + hs[j].Value + `)$`)
				if err != nil {
					return fmt.Errorf("route %s: %s value %q: %w", r.Name, hs[j].Name, hs[j].Value, err)
				}
				hs[j].re = re
			}
		}
	}
	return nil
}

// score orders matching matches as the Gateway API does: an exact path
// (then a regular expression, then a prefix), then the longest path, then a
// method, then the most headers, then the most query parameters.
type score [5]int

func (m *RouteMatch) matches(method, path string, query url.Values, h Headers) (score, bool) {
	var s score
	switch m.PathType {
	case "":
	case policy.PathMatchExact:
		if path != m.Path {
			return s, false
		}
		s[0] = 2
	case policy.PathMatchPathPrefix:
		prefix := strings.TrimSuffix(m.Path, "/")
		if !strings.HasPrefix(path, prefix) || (len(path) > len(prefix) && path[len(prefix)] != '/') {
			return s, false
		}
		s[1] = len(prefix)
	case policy.PathMatchRegularExpression:
		if m.pathRE == nil || !m.pathRE.MatchString(path) {
			return s, false
		}
		s[0] = 1
	default:
		return s, false
	}
	if m.PathType != policy.PathMatchPathPrefix {
		s[1] = len(m.Path)
	}
	if m.Method != "" {
		if !strings.EqualFold(method, m.Method) {
			return s, false
		}
		s[2] = 1
	}
	for _, hm := range m.Headers {
		if !hm.matches(h.Get(hm.Name)) {
			return s, false
		}
	}
	s[3] = len(m.Headers)
	for _, qm := range m.QueryParams {
		if !qm.matches(query.Get(qm.Name)) {
			return s, false
		}
	}
	s[4] = len(m.QueryParams)
	return s, true
}

func (hm *HeaderMatch) matches(v string) bool {
	if hm.Type == policy.HeaderMatchRegularExpression {
		return hm.re != nil && hm.re.MatchString(v)
	}
	return v == hm.Value
}

// MatchRoute returns the port's route for a request (target is the
// request target: path and query), nil when none matches. Routes are
// ordered (oldest first): the first of the best matches wins.
func (p *Port) MatchRoute(method, target string, h Headers) *Route {
	r, _ := p.Match(method, target, h)
	return r
}

// Match is MatchRoute that also returns the route's match that matched.
func (p *Port) Match(method, target string, h Headers) (*Route, *RouteMatch) {
	path, rawQuery, _ := strings.Cut(target, "?")
	var query url.Values
	var best *Route
	var bestMatch *RouteMatch
	var bestScore score
	for i := range p.Routes {
		r := &p.Routes[i]
		for j := range r.Matches {
			m := &r.Matches[j]
			if len(m.QueryParams) > 0 && query == nil {
				query, _ = url.ParseQuery(rawQuery)
			}
			s, ok := m.matches(method, path, query, h)
			if ok && (best == nil || slices.Compare(s[:], bestScore[:]) > 0) {
				best, bestMatch, bestScore = r, m, s
			}
		}
	}
	return best, bestMatch
}

// Authorize returns the route's authorization that allows the client, or nil.
func (r *Route) Authorize(addr netip.Addr, id string) *Authorization {
	for i := range r.Authorizations {
		if r.Authorizations[i].Allows(addr, id) {
			return &r.Authorizations[i]
		}
	}
	return nil
}

// serverRoutes returns the HTTPRoutes attached to Server s, oldest first,
// each with the authorizations targeting it followed by the Server's (serverAuthz).
func serverRoutes(s *policy.Server, serverAuthz []Authorization, x *resIndex, cfg Config) []Route {
	var attached []*policy.HTTPRoute
	for _, r := range x.routes[s.Namespace] {
		if attachesTo(r, s) {
			attached = append(attached, r)
		}
	}
	slices.SortFunc(attached, func(a, b *policy.HTTPRoute) int {
		ta, tb := a.CreationTimestamp, b.CreationTimestamp
		if !ta.Equal(&tb) {
			if ta.Before(&tb) {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	routes := make([]Route, 0, len(attached))
	for _, hr := range attached {
		group := routeGroup(hr)
		r := Route{Group: group, Name: hr.Name, Matches: routeMatches(hr)}
		for _, ap := range x.apByTarget[targetKey(hr.Namespace, policy.KindHTTPRoute, group, hr.Name)] {
			if a, ok := fromAuthorizationPolicy(ap, x, cfg); ok {
				r.Authorizations = append(r.Authorizations, a)
			}
		}
		slices.SortStableFunc(r.Authorizations, func(a, b Authorization) int { return cmp.Compare(a.Name, b.Name) })
		r.Authorizations = append(r.Authorizations, serverAuthz...)
		if err := r.Compile(); err != nil {
			continue // refused by validation
		}
		routes = append(routes, r)
	}
	return routes
}

func attachesTo(r *policy.HTTPRoute, s *policy.Server) bool {
	for _, p := range r.Spec.ParentRefs {
		if p.IsServerParent() && p.Name == s.Name && (p.Namespace == "" || p.Namespace == s.Namespace) {
			return true
		}
	}
	return false
}

func routeGroup(r *policy.HTTPRoute) string {
	g, _, ok := strings.Cut(r.APIVersion, "/")
	if !ok || g == "" {
		return policy.GroupName
	}
	return g
}

// routeMatches flattens the matches of the route's rules; a rule without
// matches (or a route without rules) matches every request.
func routeMatches(r *policy.HTTPRoute) []RouteMatch {
	if len(r.Spec.Rules) == 0 {
		return []RouteMatch{{}}
	}
	var out []RouteMatch
	for _, rule := range r.Spec.Rules {
		filters := routefilter.ToProto(rule.Filters)
		if len(rule.Matches) == 0 {
			out = append(out, RouteMatch{Filters: filters})
		}
		for _, m := range rule.Matches {
			rm := RouteMatch{Method: m.Method, Filters: filters}
			if m.Path != nil {
				rm.PathType, rm.Path = cmp.Or(m.Path.Type, policy.PathMatchPathPrefix), cmp.Or(m.Path.Value, "/")
			}
			for _, h := range m.Headers {
				rm.Headers = append(rm.Headers, HeaderMatch{Type: cmp.Or(h.Type, policy.HeaderMatchExact), Name: h.Name, Value: h.Value})
			}
			for _, q := range m.QueryParams {
				rm.QueryParams = append(rm.QueryParams, HeaderMatch{Type: cmp.Or(q.Type, policy.HeaderMatchExact), Name: q.Name, Value: q.Value})
			}
			out = append(out, rm)
		}
	}
	return out
}
