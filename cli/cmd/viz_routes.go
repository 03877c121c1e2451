package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

type routesOptions struct {
	namespace  string
	output     string
	to, toNS   string
	timeWindow string
}

func newCmdVizRoutes(global *GlobalOptions, vopts *vizOptions) *cobra.Command {
	opts := &routesOptions{}
	cmd := &cobra.Command{
		Use:   "routes [flags] (RESOURCE)",
		Short: "Display route stats",
		Long: `Display route stats.

The requests a resource received (or, with --to, sent to that resource), per
ServiceProfile route when the proxies report routes; requests no route
matched, and every request of a service without a profile, are the route
[DEFAULT] of the service they were sent to.`,
		Example: `  linkerd viz routes deploy/web -n demo
  linkerd viz routes deploy/web -n demo --to deploy/voting -o wide`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(opts.output, "table", "wide", "json"); err != nil {
				return err
			}
			sel, err := client.ParseResource(opts.namespace, args...)
			if err != nil {
				return err
			}
			to, err := parseTarget("--to", opts.to, nsOr(opts.toNS, opts.namespace))
			if err != nil {
				return err
			}
			resp, err := askMetricsAPI(cmd, global, vopts, func(ctx context.Context, c *client.Client) (*vizv1.TopRoutesResponse, error) {
				return c.TopRoutes(ctx, &vizv1.TopRoutesRequest{Selector: sel, TimeWindow: opts.timeWindow, To: to})
			})
			if err != nil {
				return err
			}
			return printRoutes(cmd.OutOrStdout(), opts.output, resp)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.namespace, "namespace", "n", "default", "namespace of the specified resource")
	flags.StringVarP(&opts.output, "output", "o", "table", `output format; one of: "table", "wide" or "json"`)
	flags.StringVar(&opts.to, "to", "", "if present, shows outbound stats to the specified resource")
	flags.StringVar(&opts.toNS, "to-namespace", "", "sets the namespace used to lookup the --to resource; by default the current --namespace")
	flags.StringVarP(&opts.timeWindow, "time-window", "t", "1m", `stat window (for example: "15s", "1m", "10m", "1h")`)
	return cmd
}

// serviceOf is the service an authority names: "web" for
// "web.demo.svc.cluster.local:8080".
func serviceOf(authority string) string {
	host := authority
	if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	if name, _, ok := strings.Cut(host, "."); ok && name != "" {
		return name
	}
	return orDash(host)
}

type routeJSON struct {
	Route        string   `json:"route"`
	Method       string   `json:"method,omitempty"`
	Path         string   `json:"path,omitempty"`
	Authority    string   `json:"authority"`
	Resource     string   `json:"resource"`
	Success      *float64 `json:"success"`
	RPS          *float64 `json:"rps"`
	LatencyMsP50 *float64 `json:"latency_ms_p50"`
	LatencyMsP95 *float64 `json:"latency_ms_p95"`
	LatencyMsP99 *float64 `json:"latency_ms_p99"`
}

func printRoutes(w io.Writer, format string, resp *vizv1.TopRoutesResponse) error {
	rows := resp.GetRows()
	if format == "json" {
		out := make([]routeJSON, 0, len(rows))
		for _, r := range rows {
			s := r.GetStats()
			sr, ok := client.SuccessRate(s)
			out = append(out, routeJSON{
				Route: r.GetRoute(), Method: r.GetMethod(), Path: r.GetPath(), Authority: r.GetAuthority(),
				Resource: r.GetResource().GetKind() + "/" + r.GetResource().GetName(),
				Success:  jsonFloat(ok, sr), RPS: jsonFloat(s != nil, client.RPS(s)),
				LatencyMsP50: jsonFloat(s.GetHasLatency(), s.GetLatencyMsP50()),
				LatencyMsP95: jsonFloat(s.GetHasLatency(), s.GetLatencyMsP95()),
				LatencyMsP99: jsonFloat(s.GetHasLatency(), s.GetLatencyMsP99()),
			})
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "No traffic found.")
		return err
	}
	// One table per resource, headed by its name when there are several.
	var groups [][]*vizv1.RouteRow
	for _, r := range rows {
		if n := len(groups); n > 0 && sameResource(groups[n-1][0].GetResource(), r.GetResource()) {
			groups[n-1] = append(groups[n-1], r)
			continue
		}
		groups = append(groups, []*vizv1.RouteRow{r})
	}
	for i, g := range groups {
		if len(groups) > 1 {
			if i > 0 {
				fmt.Fprintln(w)
			}
			res := g[0].GetResource()
			fmt.Fprintf(w, "==> %s/%s <==\n", res.GetKind(), res.GetName())
		}
		t := &table{header: []string{"ROUTE", "SERVICE", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"}, left: 2}
		if format == "wide" {
			t.header = []string{"ROUTE", "AUTHORITY", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"}
		}
		for _, r := range g {
			s := r.GetStats()
			svc := serviceOf(r.GetAuthority())
			if format == "wide" {
				svc = orDash(r.GetAuthority())
			}
			t.add(r.GetRoute(), svc, fmtSuccess(s), fmtRPS(s),
				fmtLatency(s, s.GetLatencyMsP50()), fmtLatency(s, s.GetLatencyMsP95()), fmtLatency(s, s.GetLatencyMsP99()))
		}
		if err := t.write(w); err != nil {
			return err
		}
	}
	return nil
}

func sameResource(a, b *vizv1.Resource) bool {
	return a.GetKind() == b.GetKind() && a.GetNamespace() == b.GetNamespace() && a.GetName() == b.GetName()
}
