package metricsapi

import (
	"context"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// DefaultRoute names the requests no ServiceProfile route matched.
const DefaultRoute = "[DEFAULT]"

// TopRoutes implements the API: the requests the selector's resources
// received (or, with to, sent to that resource), per ServiceProfile route
// (route_response_total's rt_route) when the proxies report routes, and
// per authority as the route "[DEFAULT]" for the rest.
func (s *Server) TopRoutes(ctx context.Context, req *vizv1.TopRoutesRequest) (*vizv1.TopRoutesResponse, error) {
	req = proto.Clone(req).(*vizv1.TopRoutesRequest)
	win, secs, err := window(req.GetTimeWindow())
	if err != nil {
		return nil, err
	}
	allNS := req.GetAllNamespaces()
	if err := checkResource("routes", req.GetSelector(), allNS); err != nil {
		return nil, err
	}
	sel := req.GetSelector()
	switch sel.GetKind() {
	case client.KindService, client.KindAuthority:
		return nil, status.Errorf(codes.InvalidArgument, "routes of a %s are not supported: give the workload that serves it", sel.GetKind())
	}
	to := req.GetTo()
	if to != nil {
		if to.GetNamespace() == "" {
			to.Namespace = sel.GetNamespace()
		}
		if err := checkResource("--to", to, false); err != nil {
			return nil, err
		}
	}
	pods, err := s.podsFor(ctx, sel, allNS)
	if err != nil {
		return nil, s.statusOf(err)
	}
	if err := s.checkExists(ctx, sel, allNS, pods); err != nil {
		return nil, err
	}

	// The rows name the resource that received the requests (no to), or
	// the target (to), and the authority they were sent to.
	var m selector
	var by []string
	rowKind, rowDst := sel.GetKind(), false
	if to == nil {
		m = append(selector{eq(labelDirection, "inbound")}, resourceMatchers(sel, allNS, false)...)
		by = groupLabels(sel.GetKind(), false)
	} else {
		m = append(selector{eq(labelDirection, "outbound")}, resourceMatchers(sel, allNS, false)...)
		m = append(m, resourceMatchers(to, false, true)...)
		by = groupLabels(to.GetKind(), true)
		rowKind, rowDst = to.GetKind(), true
	}
	routes, err := s.groupedStats(ctx, "route_response", m, append(slices.Clone(by), "rt_route", "dst"), win, secs)
	if err != nil {
		return nil, s.statusOf(err)
	}
	defaults, err := s.groupedStats(ctx, "response", m, append(slices.Clone(by), labelAuthority), win, secs)
	if err != nil {
		return nil, s.statusOf(err)
	}

	out := &vizv1.TopRoutesResponse{}
	routed := map[resourceKey]bool{}
	for _, g := range routes {
		k := keyOf(rowKind, rowDst, g.labels)
		routed[k] = true
		route := string(g.labels["rt_route"])
		if route == "" {
			route = DefaultRoute
		}
		method, path := splitRoute(route)
		out.Rows = append(out.Rows, &vizv1.RouteRow{
			Route: route, Method: method, Path: path,
			Authority: string(g.labels["dst"]),
			Resource:  &vizv1.Resource{Kind: rowKind, Namespace: k.namespace, Name: k.name},
			Stats:     g.stats,
		})
	}
	for _, g := range defaults {
		k := keyOf(rowKind, rowDst, g.labels)
		if routed[k] {
			continue // its requests are in its route rows
		}
		out.Rows = append(out.Rows, &vizv1.RouteRow{
			Route:     DefaultRoute,
			Authority: string(g.labels[model.LabelName(labelAuthority)]),
			Resource:  &vizv1.Resource{Kind: rowKind, Namespace: k.namespace, Name: k.name},
			Stats:     g.stats,
		})
	}
	slices.SortFunc(out.Rows, func(a, b *vizv1.RouteRow) int {
		for _, c := range []int{
			strings.Compare(a.Resource.Namespace, b.Resource.Namespace),
			strings.Compare(a.Resource.Name, b.Resource.Name),
			strings.Compare(a.Authority, b.Authority),
			compareRoutes(a.Route, b.Route),
		} {
			if c != 0 {
				return c
			}
		}
		return 0
	})
	return out, nil
}

// compareRoutes orders routes by name with [DEFAULT] last.
func compareRoutes(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == DefaultRoute:
		return 1
	case b == DefaultRoute:
		return -1
	}
	return strings.Compare(a, b)
}

// splitRoute reads a route named "METHOD /path" (as `linkerd profile`
// names the routes it generates) into its method and path.
func splitRoute(route string) (method, path string) {
	m, p, ok := strings.Cut(route, " ")
	if !ok || !strings.HasPrefix(p, "/") || m == "" || strings.ToUpper(m) != m {
		return "", ""
	}
	return m, p
}
