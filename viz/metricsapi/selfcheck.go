package metricsapi

import (
	"context"
	"fmt"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// SelfCheck implements the API: whether Prometheus answers, whether it
// scrapes any proxy, and whether pods can be listed. Each outcome is a
// result; the call itself fails only when the context ends.
func (s *Server) SelfCheck(ctx context.Context, _ *vizv1.SelfCheckRequest) (*vizv1.SelfCheckResponse, error) {
	resp := &vizv1.SelfCheckResponse{}
	add := func(desc string, st vizv1.CheckResult_Status, msg string) {
		resp.Results = append(resp.Results, &vizv1.CheckResult{Description: desc, Status: st, Message: msg})
	}

	const promDesc = "can query Prometheus"
	v, err := query(ctx, s.prom, fmt.Sprintf("count(up%s)", selector{eq("job", client.ProxyScrapeJob)}))
	switch {
	case err != nil:
		add(promDesc, vizv1.CheckResult_FAILED, fmt.Sprintf("cannot query Prometheus at %s: %v", s.promURL, err))
	default:
		add(promDesc, vizv1.CheckResult_OK, "")
		const scrapeDesc = "Prometheus scrapes proxies"
		if len(v) == 0 || v[0].Value == 0 {
			add(scrapeDesc, vizv1.CheckResult_WARNING, fmt.Sprintf("no %s target in Prometheus at %s: no meshed pod yet, or its scrape config lacks the job", client.ProxyScrapeJob, s.promURL))
		} else {
			add(scrapeDesc, vizv1.CheckResult_OK, "")
		}
	}

	const podsDesc = "can list pods"
	if _, err := s.pods.Pods(ctx, ""); err != nil {
		add(podsDesc, vizv1.CheckResult_FAILED, err.Error())
	} else {
		add(podsDesc, vizv1.CheckResult_OK, "")
	}
	if err := ctx.Err(); err != nil {
		return nil, s.statusOf(err)
	}
	return resp, nil
}
