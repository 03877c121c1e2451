package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// vizMetricsFlags adds the flags of the commands that read the metrics API
// (where it is) and those commands to the viz command.
func vizMetricsCommands(cmd *cobra.Command, global *GlobalOptions, opts *vizOptions) {
	flags := cmd.PersistentFlags()
	flags.StringVar(&opts.apiAddr, "api-addr", "", "talk to the metrics API at host:port directly")
	addStateDirFlag(flags, &opts.stateDir)
	cmd.AddCommand(newCmdVizStat(global, opts))
	cmd.AddCommand(newCmdVizEdges(global, opts))
	cmd.AddCommand(newCmdVizRoutes(global, opts))
	cmd.AddCommand(newCmdVizAuthz(global, opts))
	cmd.AddCommand(newCmdVizTop(global, opts))
	cmd.AddCommand(newCmdVizTap(global, opts))
	cmd.AddCommand(newCmdVizProfile(global, opts))
	cmd.AddCommand(newCmdVizList(global, opts))
}

// metricsAPIAddr returns the address of the metrics API the flags point at,
// and what to call when done with it (in a cluster, it stops the
// port-forward to the metrics API).
func metricsAPIAddr(cmd *cobra.Command, global *GlobalOptions, opts *vizOptions) (string, func(), error) {
	if opts.apiAddr != "" {
		return opts.apiAddr, func() {}, nil
	}
	explicit := cmd.Flags().Changed(stateDirFlag)
	if !explicit && hasKubeconfig(global) {
		return kubeMetricsAPI(cmd.Context(), global, opts)
	}
	addr, err := localmesh.MetricsAPIAddr(opts.stateDir)
	if errors.Is(err, localmesh.ErrNotUp) {
		if explicit {
			return "", nil, fmt.Errorf("no local mesh is up at %s (run: linkerd local up)", opts.stateDir)
		}
		return "", nil, fmt.Errorf("no kubeconfig and no local mesh up at %s: start one (linkerd local up, linkerd demo) or give --api-addr", opts.stateDir)
	}
	if err != nil {
		return "", nil, err
	}
	return addr, func() {}, nil
}

// useLocalMesh reports whether cmd targets the local mesh rather than a
// cluster: --state-dir was given, or there is no kubeconfig at all.
func useLocalMesh(cmd *cobra.Command, global *GlobalOptions) bool {
	return cmd.Flags().Changed(stateDirFlag) || !hasKubeconfig(global)
}

// stateDirFlag chooses the local mesh a command targets.
const stateDirFlag = "state-dir"

// addStateDirFlag adds --state-dir to a command that can target the local mesh.
func addStateDirFlag(flags interface {
	StringVar(p *string, name, value, usage string)
}, dir *string) {
	flags.StringVar(dir, stateDirFlag, localmesh.DefaultStateDir, "use the local mesh whose state is in this directory (the default when there is no kubeconfig)")
}

// askMetricsAPI makes one call to the metrics API the flags point at, in
// the CLI's request time; an error of the call is told as vizError tells it.
func askMetricsAPI[R any](cmd *cobra.Command, global *GlobalOptions, vopts *vizOptions, call func(ctx context.Context, c *client.Client) (R, error)) (R, error) {
	var zero R
	addr, release, err := metricsAPIAddr(cmd, global, vopts)
	if err != nil {
		return zero, err
	}
	defer release()
	c, err := client.Dial(addr)
	if err != nil {
		return zero, err
	}
	defer c.Close()
	ctx, cancel := cliContext(cmd.Context())
	defer cancel()
	resp, err := call(ctx, c)
	if err != nil {
		return zero, vizError(err, addr)
	}
	return resp, nil
}

// hasKubeconfig reports whether a kubeconfig is given or in its default place.
func hasKubeconfig(global *GlobalOptions) bool {
	if global.Kubeconfig != "" || os.Getenv("KUBECONFIG") != "" {
		return true
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(home, ".kube", "config"))
	return err == nil
}

// vizError turns a metrics API error into one line for the user.
func vizError(err error, addr string) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		if strings.Contains(st.Message(), "Prometheus") {
			return errors.New(st.Message())
		}
		msg := st.Message()
		// gRPC wraps the dial error: keep the dial error.
		if i := strings.Index(msg, "dial tcp"); i >= 0 {
			msg = strings.TrimSuffix(msg[i:], `"`)
		}
		return fmt.Errorf("cannot reach the metrics API at %s: %s", addr, msg)
	case codes.DeadlineExceeded:
		return fmt.Errorf("the metrics API at %s did not answer in time", addr)
	}
	return errors.New(st.Message())
}

// checkOutput validates -o.
func checkOutput(o string, allowed ...string) error {
	for _, a := range allowed {
		if o == a {
			return nil
		}
	}
	return fmt.Errorf("--output must be one of %s, not %q", strings.Join(allowed, ", "), o)
}

// Formatting of stats as Linkerd's CLI prints them.

func fmtSuccess(s *vizv1.Stats) string {
	r, ok := client.SuccessRate(s)
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", r*100)
}

func fmtRPS(s *vizv1.Stats) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%.1frps", client.RPS(s))
}

func fmtLatency(s *vizv1.Stats, v float64) string {
	if s == nil || !s.GetHasLatency() || math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatInt(int64(math.Round(v)), 10) + "ms"
}

// table renders rows with the first left columns left-aligned and the rest
// right-aligned, three spaces apart, as Linkerd's tables.
type table struct {
	header []string
	left   int
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) error {
	widths := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range append([][]string{t.header}, t.rows...) {
		var line strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				line.WriteString("   ")
			}
			if i < t.left {
				line.WriteString(c + pad)
			} else {
				line.WriteString(pad + c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// jsonFloat is a number for -o json, null when unknown.
func jsonFloat(ok bool, v float64) *float64 {
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// parseTarget parses a --to/--from value ("deploy/web", "svc/web",
// "ns/demo") in namespace ns.
func parseTarget(flag, value, ns string) (*vizv1.Resource, error) {
	if value == "" {
		return nil, nil
	}
	r, err := client.ParseResource(ns, value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return r, nil
}

// cliContext bounds a metrics API call.
func cliContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 30*time.Second)
}

// windowSeconds is a Prometheus duration in seconds, 0 when invalid.
func windowSeconds(w string) float64 {
	d, err := model.ParseDuration(w)
	if err != nil {
		return 0
	}
	return time.Duration(d).Seconds()
}
