package cmd

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

type vizAuthzOptions struct {
	namespace  string
	timeWindow string
}

func newCmdVizAuthz(global *GlobalOptions, vopts *vizOptions) *cobra.Command {
	opts := &vizAuthzOptions{}
	cmd := &cobra.Command{
		Use:   "authz [flags] resource",
		Short: "Display stats for authorizations for a resource",
		Long: `Display stats for authorizations for a resource.

The requests the resource's proxies received, per server, route and the
authorization that allowed them (a default policy shows as
default:<name>), and per server and route the rate of requests denied
(UNAUTHORIZED), from the viz metrics API.`,
		Example: `  linkerd viz authz -n demo deploy/web`,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sel, err := client.ParseResource(opts.namespace, args...)
			if err != nil {
				return err
			}
			resp, err := askMetricsAPI(cmd, global, vopts, func(ctx context.Context, c *client.Client) (*vizv1.AuthzResponse, error) {
				return c.Authz(ctx, &vizv1.AuthzRequest{Resource: sel, TimeWindow: opts.timeWindow})
			})
			if err != nil {
				return err
			}
			return printVizAuthz(cmd.OutOrStdout(), resp)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.namespace, "namespace", "n", "default", "Namespace of resource")
	flags.StringVarP(&opts.timeWindow, "time-window", "t", "1m", `Stat window (for example: "15s", "1m", "10m", "1h")`)
	return cmd
}

func printVizAuthz(w io.Writer, resp *vizv1.AuthzResponse) error {
	if len(resp.GetRows()) == 0 {
		_, err := fmt.Fprintln(w, "No traffic found.")
		return err
	}
	t := &table{header: []string{"ROUTE", "SERVER", "AUTHORIZATION", "UNAUTHORIZED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"}, left: 3}
	for _, r := range resp.GetRows() {
		server := r.GetServerName()
		if r.GetServerKind() == inboundpolicy.KindDefault {
			server = "default:" + server
		}
		route := r.GetRouteName()
		if route == "" || route == inboundpolicy.DefaultRouteName {
			route = "*"
		}
		s := r.GetStats()
		if r.GetAuthzName() == "" {
			rate := 0.0
			if ws := s.GetWindowSeconds(); ws > 0 {
				rate = r.GetDeniedCount() / ws
			}
			t.add(route, server, "", fmt.Sprintf("%.1frps", rate), "-", "-", "-", "-", "-")
			continue
		}
		authz := r.GetAuthzKind() + "/" + r.GetAuthzName()
		if r.GetAuthzKind() == inboundpolicy.KindDefault {
			authz = "default:" + r.GetAuthzName()
		}
		t.add(route, server, authz, "0.0rps", fmtSuccess(s), fmtRPS(s),
			fmtLatency(s, s.GetLatencyMsP50()), fmtLatency(s, s.GetLatencyMsP95()), fmtLatency(s, s.GetLatencyMsP99()))
	}
	return t.write(w)
}
