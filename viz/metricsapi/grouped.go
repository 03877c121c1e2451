package metricsapi

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/prometheus/common/model"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

// group is the stats of one label combination.
type group struct {
	labels model.Metric
	stats  *vizv1.Stats
}

func groupKey(m model.Metric, by []string) string {
	var b strings.Builder
	for _, l := range by {
		b.WriteString(string(m[model.LabelName(l)]))
		b.WriteByte(0)
	}
	return b.String()
}

// groupedStats runs the request queries of a family ("response" for
// response_total/response_latency_ms, "route_response" for the
// ServiceProfile route families) over sel, grouped by the labels by, and
// returns the groups that had requests.
func (s *Server) groupedStats(ctx context.Context, family string, sel selector, by []string, win string, secs float64) (map[string]*group, error) {
	byList := strings.Join(by, ", ")
	sep := ""
	if byList != "" {
		sep = ", "
	}
	queries := []string{
		fmt.Sprintf("sum(increase(%s_total%s[%s])) by (%s%s%s)", family, sel, win, byList, sep, labelClass),
	}
	for _, q := range []float64{0.5, 0.95, 0.99} {
		queries = append(queries, fmt.Sprintf("histogram_quantile(%g, sum(rate(%s_latency_ms_bucket%s[%s])) by (%s%sle))", q, family, sel, win, byList, sep))
	}
	results := make([]model.Vector, len(queries))
	errs := make([]error, len(queries))
	var wg sync.WaitGroup
	for i, q := range queries {
		wg.Go(func() { results[i], errs[i] = query(ctx, s.prom, q) })
	}
	wg.Wait()
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	groups := map[string]*group{}
	for _, smp := range results[0] {
		v := float64(smp.Value)
		if v <= 0 || math.IsNaN(v) {
			continue
		}
		k := groupKey(smp.Metric, by)
		g := groups[k]
		if g == nil {
			lm := model.Metric{}
			for _, l := range by {
				lm[model.LabelName(l)] = smp.Metric[model.LabelName(l)]
			}
			g = &group{labels: lm, stats: &vizv1.Stats{WindowSeconds: secs}}
			groups[k] = g
		}
		if smp.Metric[labelClass] == "success" {
			g.stats.SuccessCount += v
		} else {
			g.stats.FailureCount += v
		}
	}
	for i, set := range []func(*vizv1.Stats, float64){
		func(st *vizv1.Stats, v float64) { st.LatencyMsP50 = v },
		func(st *vizv1.Stats, v float64) { st.LatencyMsP95 = v },
		func(st *vizv1.Stats, v float64) { st.LatencyMsP99 = v },
	} {
		for _, smp := range results[1+i] {
			v := float64(smp.Value)
			g := groups[groupKey(smp.Metric, by)]
			if g == nil || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			g.stats.HasLatency = true
			set(g.stats, v)
		}
	}
	return groups, nil
}
