package inboundpolicy

import (
	"testing"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
)

// TestRouteMatchFilters: each match carries its rule's filters, through
// the policy API and back.
func TestRouteMatchFilters(t *testing.T) {
	withHeader := pathRule(policy.PathMatchPathPrefix, "/api", "")
	withHeader.Filters = []policy.HTTPRouteFilter{{Type: policy.FilterRequestHeaderModifier,
		RequestHeaderModifier: &policy.HTTPHeaderFilter{Add: []policy.HTTPHeader{{Name: "x-route", Value: "api"}}}}}
	redirect := policy.HTTPRouteRule{Filters: []policy.HTTPRouteFilter{{Type: policy.FilterRequestRedirect,
		RequestRedirect: &policy.HTTPRequestRedirectFilter{StatusCode: 301}}}}
	plain := pathRule(policy.PathMatchExact, "/plain", "")
	r := httpRoute("web", 0, "web-http", withHeader, redirect, plain)
	ms := routeMatches(r)
	want := []string{"x-route", "redirect", ""}
	check := func(t *testing.T, ms []RouteMatch) {
		t.Helper()
		if len(ms) != len(want) {
			t.Fatalf("got %d matches, want %d", len(ms), len(want))
		}
		for i, m := range ms {
			got := ""
			if len(m.Filters) == 1 {
				switch {
				case m.Filters[0].GetRequestHeaderModifier() != nil:
					got = m.Filters[0].GetRequestHeaderModifier().GetAdd()[0].GetName()
				case m.Filters[0].GetRequestRedirect().GetStatusCode() == 301:
					got = "redirect"
				}
			} else if len(m.Filters) > 1 {
				got = "several"
			}
			if got != want[i] {
				t.Errorf("match %d: filters %v, want %q", i, m.Filters, want[i])
			}
		}
	}
	check(t, ms)
	_, ports, err := FromProto(ToProto(Port{}, []Port{{Port: 8080, Routes: []Route{{Name: "web", Matches: ms}}}}))
	if err != nil {
		t.Fatal(err)
	}
	check(t, ports[8080].Routes[0].Matches)
}
