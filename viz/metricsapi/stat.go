package metricsapi

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// StatSummary implements the API.
func (s *Server) StatSummary(ctx context.Context, req *vizv1.StatSummaryRequest) (*vizv1.StatSummaryResponse, error) {
	req = proto.Clone(req).(*vizv1.StatSummaryRequest)
	win, secs, err := window(req.GetTimeWindow())
	if err != nil {
		return nil, err
	}
	allNS := req.GetAllNamespaces()
	if err := checkResource("stat", req.GetSelector(), allNS); err != nil {
		return nil, err
	}
	sel := req.GetSelector()
	to, from := req.GetTo(), req.GetFrom()
	if to != nil && from != nil {
		return nil, status.Error(codes.InvalidArgument, "--to and --from are mutually exclusive")
	}
	for _, f := range []struct {
		what string
		r    *vizv1.Resource
	}{{"--to", to}, {"--from", from}} {
		if f.r == nil {
			continue
		}
		if f.r.GetNamespace() == "" {
			f.r.Namespace = sel.GetNamespace()
		}
		if err := checkResource(f.what, f.r, false); err != nil {
			return nil, err
		}
		if f.what == "--from" && (f.r.GetKind() == client.KindService || f.r.GetKind() == client.KindAuthority) {
			return nil, status.Errorf(codes.InvalidArgument, "--from %s is not supported: requests come from workloads", f.r.GetKind())
		}
	}
	if from != nil && sel.GetKind() == client.KindAuthority {
		return nil, status.Error(codes.InvalidArgument, "authority with --from is not supported")
	}
	if to != nil && (sel.GetKind() == client.KindService || sel.GetKind() == client.KindAuthority) {
		return nil, status.Errorf(codes.InvalidArgument, "%s with --to is not supported: requests come from workloads", sel.GetKind())
	}

	pods, err := s.podsFor(ctx, sel, allNS)
	if err != nil {
		return nil, s.statusOf(err)
	}
	if err := s.checkExists(ctx, sel, allNS, pods); err != nil {
		return nil, err
	}
	for _, f := range []*vizv1.Resource{to, from} {
		if f == nil {
			continue
		}
		fp, err := s.pods.Pods(ctx, "")
		if err != nil {
			return nil, s.statusOf(err)
		}
		if err := s.checkExists(ctx, f, false, fp); err != nil {
			return nil, err
		}
	}

	p := statPlan(sel, allNS, to, from)
	rows, err := s.stats(ctx, p, sel.GetKind(), win, secs, !req.GetSkipTcpStats())
	if err != nil {
		return nil, s.statusOf(err)
	}

	// Every resource with pods gets a row, traffic or not (as Linkerd
	// lists them); services and authorities only when they had traffic.
	if sel.GetKind() != client.KindService && sel.GetKind() != client.KindAuthority {
		for _, pod := range pods {
			name := pod.resourceName(sel.GetKind())
			if name == "" || (sel.GetName() != "" && name != sel.GetName()) {
				continue
			}
			k := resourceKey{namespace: pod.Namespace, name: name}
			if sel.GetKind() == client.KindNamespace {
				k.namespace = ""
			}
			r := rows[k]
			if r == nil {
				r = &vizv1.StatRow{}
				rows[k] = r
			}
			switch {
			case pod.Status == "Failed":
				r.FailedPods++
			case pod.Status == "Running":
				r.RunningPods++
			}
			if pod.Meshed && pod.Status == "Running" {
				r.MeshedPods++
			}
		}
	}

	out := &vizv1.StatSummaryResponse{TimeWindow: win}
	for k, r := range rows {
		r.Resource = &vizv1.Resource{Kind: sel.GetKind(), Namespace: k.namespace, Name: k.name}
		out.Rows = append(out.Rows, r)
	}
	slices.SortFunc(out.Rows, func(a, b *vizv1.StatRow) int {
		if c := strings.Compare(a.Resource.Namespace, b.Resource.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Resource.Name, b.Resource.Name)
	})
	return out, nil
}

// stats runs a plan's queries and returns the rows with traffic (or open
// connections), keyed by resource.
func (s *Server) stats(ctx context.Context, p plan, kind, win string, secs float64, tcp bool) (map[resourceKey]*vizv1.StatRow, error) {
	queries := []string{responsesQuery(p, win), quantileQuery(p, 0.5, win), quantileQuery(p, 0.95, win), quantileQuery(p, 0.99, win)}
	if tcp {
		o, r, w := tcpQueries(p, win)
		queries = append(queries, o, r, w)
	}
	results := make([][]sampleRow, len(queries))
	errs := make([]error, len(queries))
	var wg sync.WaitGroup
	for i, q := range queries {
		wg.Go(func() {
			v, err := query(ctx, s.prom, q)
			errs[i] = err
			for _, smp := range v {
				results[i] = append(results[i], sampleRow{key: keyOf(kind, p.dstGroup, smp.Metric), class: string(smp.Metric[labelClass]), value: float64(smp.Value)})
			}
		})
	}
	wg.Wait()
	if err := firstErr(errs); err != nil {
		return nil, err
	}

	rows := map[resourceKey]*vizv1.StatRow{}
	row := func(k resourceKey) *vizv1.StatRow {
		r := rows[k]
		if r == nil {
			r = &vizv1.StatRow{}
			rows[k] = r
		}
		return r
	}
	statsOf := func(r *vizv1.StatRow) *vizv1.Stats {
		if r.Stats == nil {
			r.Stats = &vizv1.Stats{WindowSeconds: secs}
		}
		return r.Stats
	}
	for _, sr := range results[0] {
		if sr.value <= 0 || math.IsNaN(sr.value) {
			continue
		}
		st := statsOf(row(sr.key))
		if sr.class == "success" {
			st.SuccessCount += sr.value
		} else {
			st.FailureCount += sr.value
		}
	}
	for i, set := range []func(*vizv1.Stats, float64){
		func(st *vizv1.Stats, v float64) { st.LatencyMsP50 = v },
		func(st *vizv1.Stats, v float64) { st.LatencyMsP95 = v },
		func(st *vizv1.Stats, v float64) { st.LatencyMsP99 = v },
	} {
		for _, sr := range results[1+i] {
			r := rows[sr.key]
			if r == nil || r.Stats == nil || math.IsNaN(sr.value) || math.IsInf(sr.value, 0) {
				continue
			}
			r.Stats.HasLatency = true
			set(r.Stats, sr.value)
		}
	}
	if tcp {
		for i, set := range []func(*vizv1.TcpStats, float64){
			func(t *vizv1.TcpStats, v float64) { t.OpenConnections = v },
			func(t *vizv1.TcpStats, v float64) { t.ReadBytesTotal = v },
			func(t *vizv1.TcpStats, v float64) { t.WriteBytesTotal = v },
		} {
			for _, sr := range results[4+i] {
				if math.IsNaN(sr.value) {
					continue
				}
				r := row(sr.key)
				if r.TcpStats == nil {
					r.TcpStats = &vizv1.TcpStats{}
				}
				set(r.TcpStats, sr.value)
			}
		}
	}
	return rows, nil
}

// sampleRow is one sample of a grouped query.
type sampleRow struct {
	key   resourceKey
	class string
	value float64
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
