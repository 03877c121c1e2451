package web

import (
	"context"
	"fmt"
	"strings"
	"time"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// apiClient answers the dashboard's questions from the viz metrics API.
type apiClient struct {
	api client.API
}

// NewMetricsClient returns the dashboard's MetricsClient over the viz
// metrics API (a gRPC client, or the server in-process).
func NewMetricsClient(api client.API) MetricsClient { return &apiClient{api: api} }

// promDuration spells d as a Prometheus duration ("1m", "90s").
func promDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", (d+time.Second-1)/time.Second)
}

func fromProto(r *vizv1.Resource) Resource {
	return Resource{Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName()}
}

func toProto(r Resource) *vizv1.Resource {
	return &vizv1.Resource{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

func statFromRow(row *vizv1.StatRow) Stat {
	s := Stat{
		Resource:    fromProto(row.GetResource()),
		MeshedPods:  int(row.GetMeshedPods()),
		RunningPods: int(row.GetRunningPods()),
		FailedPods:  int(row.GetFailedPods()),
	}
	st := row.GetStats()
	if sr, ok := client.SuccessRate(st); ok {
		s.SuccessRate = &sr
	}
	s.RPS = client.RPS(st)
	if st.GetHasLatency() {
		s.LatencyP50, s.LatencyP95, s.LatencyP99 = ptrTo(st.GetLatencyMsP50()), ptrTo(st.GetLatencyMsP95()), ptrTo(st.GetLatencyMsP99())
	}
	s.TCPConnections = row.GetTcpStats().GetOpenConnections()
	return s
}

func ptrTo(v float64) *float64 { return &v }

func (c *apiClient) StatSummary(ctx context.Context, q StatQuery) ([]Stat, error) {
	req := &vizv1.StatSummaryRequest{
		Selector:      &vizv1.Resource{Kind: q.Kind, Namespace: q.Namespace, Name: q.Name},
		AllNamespaces: q.Namespace == "" && q.Kind != client.KindNamespace,
		TimeWindow:    promDuration(q.Window),
	}
	resp, err := c.api.StatSummary(ctx, req)
	if err != nil {
		return nil, err
	}
	rows := make([]Stat, 0, len(resp.GetRows()))
	for _, r := range resp.GetRows() {
		rows = append(rows, statFromRow(r))
	}
	if q.Owner == nil {
		return rows, nil
	}
	// The pods of one workload: the owner's pods (running or not, with
	// traffic or not), with their stats when they have some.
	pods, err := c.api.ListPods(ctx, &vizv1.ListPodsRequest{Namespace: q.Namespace})
	if err != nil {
		return nil, err
	}
	byName := make(map[string]Stat, len(rows))
	for _, r := range rows {
		byName[r.Resource.Name] = r
	}
	var out []Stat
	for _, p := range pods.GetPods() {
		o := p.GetOwner()
		if o.GetKind() != q.Owner.Kind || o.GetName() != q.Owner.Name {
			continue
		}
		s, ok := byName[p.GetName()]
		if !ok {
			s = Stat{Resource: Resource{Kind: client.KindPod, Namespace: p.GetNamespace(), Name: p.GetName()}}
			if p.GetMeshed() {
				s.MeshedPods = 1
			}
			if strings.EqualFold(p.GetStatus(), "Running") {
				s.RunningPods = 1
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func (c *apiClient) Edges(ctx context.Context, namespace, kind string, window time.Duration) ([]Edge, error) {
	resp, err := c.api.Edges(ctx, &vizv1.EdgesRequest{
		Selector:   &vizv1.Resource{Kind: kind, Namespace: namespace},
		TimeWindow: promDuration(window),
	})
	if err != nil {
		return nil, err
	}
	edges := make([]Edge, 0, len(resp.GetEdges()))
	for _, e := range resp.GetEdges() {
		edges = append(edges, Edge{
			Src:         fromProto(e.GetSrc()),
			Dst:         fromProto(e.GetDst()),
			ClientID:    e.GetClientId(),
			ServerID:    e.GetServerId(),
			NoTLSReason: e.GetNoTlsReason(),
		})
	}
	return edges, nil
}

func (c *apiClient) TopRoutes(ctx context.Context, q RouteQuery) ([]Route, error) {
	window := promDuration(q.Window)
	if !q.Outbound {
		resp, err := c.api.TopRoutes(ctx, &vizv1.TopRoutesRequest{Selector: toProto(q.Resource), TimeWindow: window})
		if err != nil {
			return nil, err
		}
		return routesFrom(resp.GetRows()), nil
	}
	// The routes a workload calls: per destination it has an edge to.
	edges, err := c.Edges(ctx, q.Resource.Namespace, q.Resource.Kind, q.Window)
	if err != nil {
		return nil, err
	}
	var out []Route
	seen := map[Resource]bool{}
	for _, e := range edges {
		if e.Src.Kind != q.Resource.Kind || e.Src.Name != q.Resource.Name || (e.Src.Namespace != "" && e.Src.Namespace != q.Resource.Namespace) || seen[e.Dst] {
			continue
		}
		seen[e.Dst] = true
		resp, err := c.api.TopRoutes(ctx, &vizv1.TopRoutesRequest{Selector: toProto(q.Resource), TimeWindow: window, To: toProto(e.Dst)})
		if err != nil {
			return nil, err
		}
		out = append(out, routesFrom(resp.GetRows())...)
	}
	return out, nil
}

func routesFrom(rows []*vizv1.RouteRow) []Route {
	out := make([]Route, 0, len(rows))
	for _, r := range rows {
		name := r.GetRoute()
		if r.GetMethod() != "" || r.GetPath() != "" {
			name = strings.TrimSpace(r.GetMethod() + " " + r.GetPath())
		}
		rt := Route{Route: name, Authority: r.GetAuthority()}
		st := r.GetStats()
		if sr, ok := client.SuccessRate(st); ok {
			rt.SuccessRate = &sr
		}
		rt.RPS = client.RPS(st)
		if st.GetHasLatency() {
			rt.LatencyP50, rt.LatencyP95, rt.LatencyP99 = ptrTo(st.GetLatencyMsP50()), ptrTo(st.GetLatencyMsP95()), ptrTo(st.GetLatencyMsP99())
		}
		out = append(out, rt)
	}
	return out
}
