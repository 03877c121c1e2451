package inboundpolicy

import (
	"net/http"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func httpRoute(name string, age time.Duration, parent string, rules ...policy.HTTPRouteRule) *policy.HTTPRoute {
	r := &policy.HTTPRoute{ObjectMeta: meta(name, age), Spec: policy.HTTPRouteSpec{
		ParentRefs: []policy.ParentReference{{Group: policy.GroupName, Kind: policy.KindServer, Name: parent}},
		Rules:      rules}}
	r.APIVersion = policy.GroupName + "/v1beta3"
	return r
}

func pathRule(typ, value, method string, headers ...policy.HTTPHeaderMatch) policy.HTTPRouteRule {
	return policy.HTTPRouteRule{Matches: []policy.HTTPRouteMatch{{
		Path: &policy.HTTPPathMatch{Type: typ, Value: value}, Method: method, Headers: headers}}}
}

func routeTarget(name string) policy.TargetRef {
	return policy.TargetRef{Group: policy.GroupName, Kind: policy.KindHTTPRoute, Name: name}
}

// request is one request and the route (or "" for none) and authorization
// it must get.
type request struct {
	method, target string
	header         http.Header
	id             string
	route, authz   string
}

func TestRoutes(t *testing.T) {
	web := Workload{Namespace: "emojivoto", Name: "web-1", Labels: map[string]string{"app": "web-svc"},
		PortNames: map[string]uint16{"http": 8080}}
	webSA := policy.TargetRef{Kind: policy.KindServiceAccount, Name: "web"}
	voteSA := policy.TargetRef{Kind: policy.KindServiceAccount, Name: "vote-bot"}
	srv := server("web-http", intstr.FromInt32(8080), "", 0)
	tests := []struct {
		name     string
		res      Resources
		requests []request
	}{
		{name: "no routes: the server's authorizations for every request",
			res: Resources{Servers: []*policy.Server{srv},
				AuthorizationPolicies: []*policy.AuthorizationPolicy{authzPolicy("web", "web-http", webSA)}},
			requests: []request{{method: "GET", target: "/anything", id: webID, authz: "web"}}},
		{name: "route authorization only for its route; server's for all routes",
			res: Resources{Servers: []*policy.Server{srv},
				HTTPRoutes: []*policy.HTTPRoute{
					httpRoute("api", 2*time.Hour, "web-http", pathRule(policy.PathMatchPathPrefix, "/api", "")),
					httpRoute("vote", time.Hour, "web-http", pathRule(policy.PathMatchExact, "/api/vote", "POST"))},
				AuthorizationPolicies: []*policy.AuthorizationPolicy{
					{ObjectMeta: meta("voters", 0), Spec: policy.AuthorizationPolicySpec{TargetRef: routeTarget("vote"),
						RequiredAuthenticationRefs: []policy.TargetRef{voteSA}}},
					authzPolicy("web", "web-http", webSA)}},
			requests: []request{
				{method: "POST", target: "/api/vote", id: voteID, route: "vote", authz: "voters"},
				{method: "POST", target: "/api/vote", id: webID, route: "vote", authz: "web"},
				{method: "GET", target: "/api/vote", id: voteID, route: "api"}, // method differs: the prefix route, not for voters
				{method: "GET", target: "/api/list?x=1", id: webID, route: "api", authz: "web"},
				{method: "GET", target: "/apix", id: webID},  // a prefix matches whole segments
				{method: "GET", target: "/other", id: webID}, // no route
			}},
		{name: "longest prefix, then headers, then oldest",
			res: Resources{Servers: []*policy.Server{srv},
				HTTPRoutes: []*policy.HTTPRoute{
					httpRoute("root", 3*time.Hour, "web-http", policy.HTTPRouteRule{}),
					httpRoute("books", 2*time.Hour, "web-http", pathRule("", "/books/", "")),
					httpRoute("books-canary", time.Hour, "web-http", pathRule("", "/books", "",
						policy.HTTPHeaderMatch{Name: "x-canary", Value: "yes"})),
					httpRoute("books-regex", 0, "web-http", pathRule(policy.PathMatchRegularExpression, "/books/[0-9]+/reviews", "")),
					httpRoute("elsewhere", 0, "other-server", policy.HTTPRouteRule{})},
				AuthorizationPolicies: []*policy.AuthorizationPolicy{authzPolicy("web", "web-http", webSA)}},
			requests: []request{
				{method: "GET", target: "/", id: webID, route: "root", authz: "web"},
				{method: "GET", target: "/books/7", id: webID, route: "books", authz: "web"}, // same length: the oldest
				{method: "GET", target: "/books/7", header: http.Header{"X-Canary": {"yes"}}, id: webID, route: "books-canary", authz: "web"},
				{method: "GET", target: "/authors", id: webID, route: "root", authz: "web"},
				{method: "GET", target: "/books/7", id: voteID, route: "books"},
				{method: "GET", target: "/books/7/reviews", header: http.Header{"X-Canary": {"yes"}}, id: webID, route: "books-regex", authz: "web"},
				{method: "GET", target: "/books/x/reviews", id: webID, route: "books", authz: "web"},
			}},
		{name: "gateway API route group",
			res: Resources{Servers: []*policy.Server{srv},
				HTTPRoutes: []*policy.HTTPRoute{func() *policy.HTTPRoute {
					r := httpRoute("gw", 0, "web-http", pathRule(policy.PathMatchExact, "/x", ""))
					r.APIVersion = policy.GatewayGroupName + "/v1"
					return r
				}()},
				AuthorizationPolicies: []*policy.AuthorizationPolicy{
					{ObjectMeta: meta("gw-policy-group", 0), Spec: policy.AuthorizationPolicySpec{TargetRef: routeTarget("gw"),
						RequiredAuthenticationRefs: []policy.TargetRef{voteSA}}},
					{ObjectMeta: meta("gw-gateway-group", 0), Spec: policy.AuthorizationPolicySpec{
						TargetRef:                  policy.TargetRef{Group: policy.GatewayGroupName, Kind: policy.KindHTTPRoute, Name: "gw"},
						RequiredAuthenticationRefs: []policy.TargetRef{webSA}}}}},
			requests: []request{
				{method: "GET", target: "/x", id: webID, route: "gw", authz: "gw-gateway-group"},
				{method: "GET", target: "/x", id: voteID, route: "gw"}, // that policy targets policy.linkerd.io's gw
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{DefaultPolicy: policy.AllUnauthenticated, ClusterNetworks: cluster}
			resolved := ResolvePort(web, 8080, &tt.res, cfg)
			// What the proxy gets goes through the API.
			_, ports, err := FromProto(ToProto(Default(policy.Deny, nil), []Port{resolved}))
			if err != nil {
				t.Fatal(err)
			}
			p := ports[8080]
			for i, rq := range tt.requests {
				h := rq.header
				if h == nil {
					h = http.Header{}
				}
				var authz *Authorization
				route := ""
				if len(p.Routes) == 0 {
					authz = p.Authorize(clusterIP, rq.id)
				} else if r := p.MatchRoute(rq.method, rq.target, h); r != nil {
					route = r.Name
					authz = r.Authorize(clusterIP, rq.id)
				}
				got := ""
				if authz != nil {
					got = authz.Name
				}
				if route != rq.route || got != rq.authz {
					t.Errorf("request %d %s %s (%s): route %q authz %q, want %q %q", i, rq.method, rq.target, rq.id, route, got, rq.route, rq.authz)
				}
			}
		})
	}
}

func TestFromProtoRefusesBadRoute(t *testing.T) {
	bad := Port{Port: 8080, ServerKind: KindServer, ServerName: "s", Routes: []Route{{Name: "r",
		Matches: []RouteMatch{{PathType: policy.PathMatchRegularExpression, Path: "("}}}}}
	if _, _, err := FromProto(ToProto(Default(policy.Deny, nil), []Port{bad})); err == nil {
		t.Fatal("accepted a route whose regular expression does not compile")
	}
}
