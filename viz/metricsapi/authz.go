package metricsapi

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

// The labels of an authorization decision on the inbound metrics.
var authzLabels = []string{"srv_kind", "srv_name", "route_name", "authz_kind", "authz_name"}

// Authz implements the API: the requests the resource's proxies allowed,
// per server, route and authorization (response_total), and those each
// server denied (inbound_http_authz_deny_total).
func (s *Server) Authz(ctx context.Context, req *vizv1.AuthzRequest) (*vizv1.AuthzResponse, error) {
	req = proto.Clone(req).(*vizv1.AuthzRequest)
	win, secs, err := window(req.GetTimeWindow())
	if err != nil {
		return nil, err
	}
	sel := req.GetResource()
	if err := checkResource("authz", sel, false); err != nil {
		return nil, err
	}
	pods, err := s.podsFor(ctx, sel, false)
	if err != nil {
		return nil, s.statusOf(err)
	}
	if err := s.checkExists(ctx, sel, false, pods); err != nil {
		return nil, err
	}
	res := resourceMatchers(sel, false, false)
	m := append(selector{eq(labelDirection, "inbound"), nonEmpty("srv_name")}, res...)
	groups, err := s.groupedStats(ctx, "response", m, authzLabels, win, secs)
	if err != nil {
		return nil, s.statusOf(err)
	}
	denyBy := authzLabels[:3]
	denied, err := query(ctx, s.prom, fmt.Sprintf("sum(increase(inbound_http_authz_deny_total%s[%s])) by (%s)",
		res, win, strings.Join(denyBy, ", ")))
	if err != nil {
		return nil, s.statusOf(err)
	}
	out := &vizv1.AuthzResponse{}
	for _, g := range groups {
		out.Rows = append(out.Rows, &vizv1.AuthzRow{
			ServerKind: string(g.labels["srv_kind"]), ServerName: string(g.labels["srv_name"]),
			RouteName: string(g.labels["route_name"]), AuthzKind: string(g.labels["authz_kind"]),
			AuthzName: string(g.labels["authz_name"]), Stats: g.stats,
		})
	}
	for _, smp := range denied {
		v := float64(smp.Value)
		if v <= 0 || math.IsNaN(v) {
			continue
		}
		out.Rows = append(out.Rows, &vizv1.AuthzRow{
			ServerKind: string(smp.Metric["srv_kind"]), ServerName: string(smp.Metric["srv_name"]),
			RouteName: string(smp.Metric["route_name"]), DeniedCount: v,
			Stats: &vizv1.Stats{WindowSeconds: secs},
		})
	}
	slices.SortFunc(out.Rows, func(a, b *vizv1.AuthzRow) int {
		return cmp.Or(cmp.Compare(a.GetServerName(), b.GetServerName()), cmp.Compare(a.GetRouteName(), b.GetRouteName()),
			cmp.Compare(a.GetAuthzKind(), b.GetAuthzKind()), cmp.Compare(a.GetAuthzName(), b.GetAuthzName()))
	})
	return out, nil
}
