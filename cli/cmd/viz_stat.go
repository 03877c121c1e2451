package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

type statOptions struct {
	namespace     string
	allNamespaces bool
	output        string
	from, to      string
	fromNS, toNS  string
	timeWindow    string
}

func newCmdVizStat(global *GlobalOptions, vopts *vizOptions) *cobra.Command {
	opts := &statOptions{}
	cmd := &cobra.Command{
		Use:     "stat [flags] (RESOURCE)",
		Aliases: []string{"st"},
		Short:   "Display traffic stats about one or many resources",
		Long: `Display traffic stats about one or many resources.

RESOURCE is a kind (namespace, deployment, statefulset, daemonset, job, pod,
service, authority; short forms such as deploy, po, svc, ns, au work), with
an optional name: "deploy", "deploy/web" or "deploy web".

A resource's stats are what its pods' proxies served; with --to or --from,
the requests between the two resources as their client saw them.`,
		Example: `  linkerd viz stat deploy -n demo
  linkerd viz stat deploy/web -n demo --to deploy/voting
  linkerd viz stat ns -o wide
  linkerd viz stat po -A -t 10m -o json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(opts.output, "table", "wide", "json"); err != nil {
				return err
			}
			sel, err := client.ParseResource(opts.namespace, args...)
			if err != nil {
				return err
			}
			if opts.from != "" && opts.to != "" {
				return fmt.Errorf("--to and --from flags are mutually exclusive")
			}
			to, err := parseTarget("--to", opts.to, nsOr(opts.toNS, opts.namespace))
			if err != nil {
				return err
			}
			from, err := parseTarget("--from", opts.from, nsOr(opts.fromNS, opts.namespace))
			if err != nil {
				return err
			}
			req := &vizv1.StatSummaryRequest{Selector: sel, AllNamespaces: opts.allNamespaces, TimeWindow: opts.timeWindow, To: to, From: from}
			resp, err := askMetricsAPI(cmd, global, vopts, func(ctx context.Context, c *client.Client) (*vizv1.StatSummaryResponse, error) {
				return c.StatSummary(ctx, req)
			})
			if err != nil {
				return err
			}
			return printStats(cmd.OutOrStdout(), opts.output, opts.allNamespaces, resp)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.namespace, "namespace", "n", "default", "namespace of the specified resource")
	flags.BoolVarP(&opts.allNamespaces, "all-namespaces", "A", false, "if present, returns stats across all namespaces, ignoring the --namespace flag")
	flags.StringVarP(&opts.output, "output", "o", "table", `output format; one of: "table", "wide" or "json"`)
	flags.StringVar(&opts.from, "from", "", "if present, restricts outbound stats from the specified resource name")
	flags.StringVar(&opts.to, "to", "", "if present, restricts outbound stats to the specified resource name")
	flags.StringVar(&opts.fromNS, "from-namespace", "", "sets the namespace used from lookup the --from resource; by default the current --namespace")
	flags.StringVar(&opts.toNS, "to-namespace", "", "sets the namespace used to lookup the --to resource; by default the current --namespace")
	flags.StringVarP(&opts.timeWindow, "time-window", "t", "1m", `stat window (for example: "15s", "1m", "10m", "1h")`)
	return cmd
}

func nsOr(ns, def string) string {
	if ns != "" {
		return ns
	}
	return def
}

// statJSON is one row of -o json.
type statJSON struct {
	Namespace         string   `json:"namespace"`
	Kind              string   `json:"kind"`
	Name              string   `json:"name"`
	Meshed            string   `json:"meshed"`
	Success           *float64 `json:"success"`
	RPS               *float64 `json:"rps"`
	LatencyMsP50      *float64 `json:"latency_ms_p50"`
	LatencyMsP95      *float64 `json:"latency_ms_p95"`
	LatencyMsP99      *float64 `json:"latency_ms_p99"`
	TCPConnections    *float64 `json:"tcp_open_connections"`
	TCPReadBytesRate  *float64 `json:"tcp_read_bytes_rate"`
	TCPWriteBytesRate *float64 `json:"tcp_write_bytes_rate"`
}

func meshedOf(r *vizv1.StatRow) string {
	switch r.GetResource().GetKind() {
	case client.KindService, client.KindAuthority:
		return "-"
	}
	return fmt.Sprintf("%d/%d", r.GetMeshedPods(), r.GetRunningPods())
}

func printStats(w io.Writer, format string, allNS bool, resp *vizv1.StatSummaryResponse) error {
	rows := resp.GetRows()
	secs := windowSeconds(resp.GetTimeWindow())
	if format == "json" {
		out := make([]statJSON, 0, len(rows))
		for _, r := range rows {
			s := r.GetStats()
			sr, ok := client.SuccessRate(s)
			j := statJSON{
				Namespace: r.GetResource().GetNamespace(), Kind: r.GetResource().GetKind(), Name: r.GetResource().GetName(),
				Meshed:       meshedOf(r),
				Success:      jsonFloat(ok, sr),
				RPS:          jsonFloat(s != nil, client.RPS(s)),
				LatencyMsP50: jsonFloat(s.GetHasLatency(), s.GetLatencyMsP50()),
				LatencyMsP95: jsonFloat(s.GetHasLatency(), s.GetLatencyMsP95()),
				LatencyMsP99: jsonFloat(s.GetHasLatency(), s.GetLatencyMsP99()),
			}
			if t := r.GetTcpStats(); t != nil {
				j.TCPConnections = jsonFloat(true, t.GetOpenConnections())
				j.TCPReadBytesRate = jsonFloat(secs > 0, t.GetReadBytesTotal()/secs)
				j.TCPWriteBytesRate = jsonFloat(secs > 0, t.GetWriteBytesTotal()/secs)
			}
			out = append(out, j)
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
	t := &table{header: []string{"NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "TCP_CONN"}, left: 1}
	if format == "wide" {
		t.header = append(t.header, "READ_BYTES/SEC", "WRITE_BYTES/SEC")
	}
	withNS := allNS && rows[0].GetResource().GetKind() != client.KindNamespace
	if withNS {
		t.header = append([]string{"NAMESPACE"}, t.header...)
		t.left = 2
	}
	for _, r := range rows {
		s := r.GetStats()
		cells := []string{r.GetResource().GetName(), meshedOf(r), fmtSuccess(s), fmtRPS(s),
			fmtLatency(s, s.GetLatencyMsP50()), fmtLatency(s, s.GetLatencyMsP95()), fmtLatency(s, s.GetLatencyMsP99())}
		tcp := r.GetTcpStats()
		if tcp == nil {
			cells = append(cells, "-")
		} else {
			cells = append(cells, strconv.FormatFloat(tcp.GetOpenConnections(), 'f', 0, 64))
		}
		if format == "wide" {
			if tcp == nil || secs <= 0 {
				cells = append(cells, "-", "-")
			} else {
				cells = append(cells, fmt.Sprintf("%.1fB/s", tcp.GetReadBytesTotal()/secs), fmt.Sprintf("%.1fB/s", tcp.GetWriteBytesTotal()/secs))
			}
		}
		if withNS {
			cells = append([]string{r.GetResource().GetNamespace()}, cells...)
		}
		t.add(cells...)
	}
	return t.write(w)
}
