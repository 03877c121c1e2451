package cmd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// topRow is one line of `viz top`: the requests from a source to a
// destination on one route.
type topRow struct {
	Source, Destination, Method, Path string
	Count                             float64
	// Best, Worst and Last latencies in milliseconds; NaN when unknown.
	Best, Worst, Last float64
	// Success is the success rate, NaN without requests.
	Success float64
}

// topSource is where `viz top` gets its rows. Linkerd's top aggregates tap
// events; until the proxy serves tap, metricsTopSource builds the rows from
// the metrics API. A tap source will implement the same interface.
type topSource interface {
	Rows(ctx context.Context) ([]topRow, error)
	// Describe says, on the screen, where the numbers come from.
	Describe() string
}

// metricsTopSource answers from the metrics API: for each edge of the
// target (requests it received and sent), its routes over the window.
// Without per-request data, Best, Worst and Last are the window's p50, p99
// and p95 latencies, and the path is the route ([DEFAULT] without a
// ServiceProfile).
type metricsTopSource struct {
	api    client.API
	target *vizv1.Resource
	window string
}

func (m *metricsTopSource) Describe() string {
	return fmt.Sprintf("from the metrics API over the last %s (no tap yet): Best/Worst/Last are p50/p99/p95", m.window)
}

func (m *metricsTopSource) Rows(ctx context.Context) ([]topRow, error) {
	kind := m.target.GetKind()
	if kind == client.KindNamespace {
		kind = client.KindDeployment
	}
	edges, err := m.api.Edges(ctx, &vizv1.EdgesRequest{
		Selector:   &vizv1.Resource{Kind: kind, Namespace: m.target.GetNamespace()},
		TimeWindow: m.window,
	})
	if err != nil {
		return nil, err
	}
	var rows []topRow
	for _, e := range edges.GetEdges() {
		if !m.involves(e) {
			continue
		}
		routes, err := m.api.TopRoutes(ctx, &vizv1.TopRoutesRequest{Selector: e.GetSrc(), To: e.GetDst(), TimeWindow: m.window})
		if err != nil {
			return nil, err
		}
		for _, r := range routes.GetRows() {
			s := r.GetStats()
			row := topRow{
				Source: e.GetSrc().GetName(), Destination: e.GetDst().GetName(),
				Method: r.GetMethod(), Path: r.GetPath(),
				Count: s.GetSuccessCount() + s.GetFailureCount(),
				Best:  math.NaN(), Worst: math.NaN(), Last: math.NaN(), Success: math.NaN(),
			}
			if row.Path == "" {
				row.Path = r.GetRoute()
			}
			if s.GetHasLatency() {
				row.Best, row.Worst, row.Last = s.GetLatencyMsP50(), s.GetLatencyMsP99(), s.GetLatencyMsP95()
			}
			if sr, ok := client.SuccessRate(s); ok {
				row.Success = sr
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// involves reports whether the edge starts or ends at the target.
func (m *metricsTopSource) involves(e *vizv1.Edge) bool {
	t := m.target
	match := func(r *vizv1.Resource) bool {
		if t.GetKind() == client.KindNamespace {
			return t.GetName() == "" || r.GetNamespace() == t.GetName()
		}
		return r.GetNamespace() == t.GetNamespace() && (t.GetName() == "" || r.GetName() == t.GetName())
	}
	return match(e.GetSrc()) || match(e.GetDst())
}

type topOptions struct {
	namespace   string
	hideSources bool
	interval    time.Duration
}

func newCmdVizTop(global *GlobalOptions, vopts *vizOptions) *cobra.Command {
	opts := &topOptions{}
	cmd := &cobra.Command{
		Use:   "top [flags] (RESOURCE)",
		Short: "Display sorted information about live traffic",
		Long: `Display sorted information about live traffic: the requests a resource
receives and sends, by source, destination and route, busiest first,
refreshed until q is pressed. Without a terminal it prints one table.

On the local mesh (when its pods serve tap) the rows come from tap, since
top started: per source, destination, method and path, Best, Worst and
Last are request latencies. Otherwise they come from the metrics API (the
last minute, per route): Best, Worst and Last are the p50, p99 and p95
latencies, and the path is the route ([DEFAULT] without a ServiceProfile).`,
		Example: `  linkerd viz top deploy/web -n demo`,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.interval < 100*time.Millisecond {
				return fmt.Errorf("--interval must be at least 100ms, not %s", opts.interval)
			}
			target, err := client.ParseResource(opts.namespace, args...)
			if err != nil {
				return err
			}
			switch target.GetKind() {
			case client.KindService, client.KindAuthority:
				return fmt.Errorf("top of a %s is not supported: give a workload or namespace", target.GetKind())
			}
			// On the local mesh, top aggregates tap events, as Linkerd's does.
			if vopts.apiAddr == "" && useLocalMesh(cmd, global) {
				ns := target.GetNamespace()
				if targets, ok := tapTopTargets(vopts.stateDir, target.GetKind(), ns, target.GetName()); ok {
					ctx, cancel := context.WithCancel(cmd.Context())
					defer cancel()
					src := newTapTopSource(ctx, targets, localmesh.PodNames(vopts.stateDir))
					return runTop(ctx, cmd.InOrStdin(), cmd.OutOrStdout(), src, opts, func(err error) error { return err })
				}
			}
			addr, release, err := metricsAPIAddr(cmd, global, vopts)
			if err != nil {
				return err
			}
			defer release()
			c, err := client.Dial(addr)
			if err != nil {
				return err
			}
			defer c.Close()
			src := &metricsTopSource{api: c, target: target, window: "1m"}
			// A target that does not exist is an error, not an empty screen.
			ctx, cancel := cliContext(cmd.Context())
			_, err = c.StatSummary(ctx, &vizv1.StatSummaryRequest{Selector: target, SkipTcpStats: true})
			cancel()
			if err != nil {
				return vizError(err, addr)
			}
			return runTop(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), src, opts, func(err error) error { return vizError(err, addr) })
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.namespace, "namespace", "n", "default", "namespace of the specified resource")
	flags.BoolVar(&opts.hideSources, "hide-sources", false, "hide the source column")
	flags.DurationVar(&opts.interval, "interval", 2*time.Second, "how often the table is refreshed")
	return cmd
}

// runTop shows the table until q (or Ctrl-C) when in and out are a
// terminal, else prints it once.
func runTop(ctx context.Context, in io.Reader, out io.Writer, src topSource, opts *topOptions, wrap func(error) error) error {
	inF, inOK := in.(*os.File)
	outF, outOK := out.(*os.File)
	if !inOK || !outOK || !term.IsTerminal(int(inF.Fd())) || !term.IsTerminal(int(outF.Fd())) {
		rows, err := src.Rows(ctx)
		if err != nil {
			return wrap(err)
		}
		return renderTop(out, rows, opts.hideSources, "\n")
	}
	fd := int(inF.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	defer func() { _ = term.Restore(fd, old) }()
	fmt.Fprint(out, "\x1b[?1049h\x1b[?25l") // alternate screen, hide cursor
	defer fmt.Fprint(out, "\x1b[?25h\x1b[?1049l")

	var lastErr error
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		rows, err := src.Rows(rctx)
		cancel()
		var b strings.Builder
		b.WriteString("\x1b[H\x1b[2J(press q to quit)\r\n")
		b.WriteString("(" + src.Describe() + ")\r\n\r\n")
		if err != nil {
			lastErr = wrap(err)
			b.WriteString("Error: " + oneLine(lastErr.Error()) + "\r\n")
		} else {
			lastErr = nil
			if err := renderTop(&b, rows, opts.hideSources, "\r\n"); err != nil {
				return err
			}
		}
		if _, err := io.WriteString(out, b.String()); err != nil {
			return err
		}
		quit, err := waitKey(ctx, fd, opts.interval)
		if err != nil {
			return err
		}
		if quit {
			return lastErr
		}
	}
}

// waitKey waits up to d for input on fd and reports whether it asked to
// quit (q, Q, Ctrl-C, Ctrl-D), or ctx is done.
func waitKey(ctx context.Context, fd int, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	for {
		if ctx.Err() != nil {
			return true, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(min(left, 200*time.Millisecond)/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("terminal: %w", err)
		}
		if n == 0 {
			continue
		}
		buf := make([]byte, 64)
		k, err := unix.Read(fd, buf)
		if err != nil || k == 0 {
			return true, nil
		}
		for _, c := range buf[:k] {
			switch c {
			case 'q', 'Q', 3, 4:
				return true, nil
			}
		}
	}
}

// renderTop writes the rows, busiest first, as a table with lines ended by nl.
func renderTop(w io.Writer, rows []topRow, hideSources bool, nl string) error {
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b topRow) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.Destination, b.Destination),
			strings.Compare(a.Path, b.Path), strings.Compare(a.Method, b.Method))
	})
	t := &table{header: []string{"Source", "Destination", "Method", "Path", "Count", "Best", "Worst", "Last", "Success Rate"}, left: 9}
	for _, r := range rows {
		t.add(r.Source, r.Destination, orDash(r.Method), r.Path, strconv.FormatFloat(math.Round(r.Count), 'f', 0, 64),
			fmtMs(r.Best), fmtMs(r.Worst), fmtMs(r.Last), fmtRate(r.Success))
	}
	if hideSources {
		t.header = t.header[1:]
		for i := range t.rows {
			t.rows[i] = t.rows[i][1:]
		}
	}
	var b strings.Builder
	if err := t.write(&b); err != nil {
		return err
	}
	s := b.String()
	if len(rows) == 0 {
		s += "(no requests yet)\n"
	}
	_, err := io.WriteString(w, strings.ReplaceAll(s, "\n", nl))
	return err
}

func fmtMs(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatInt(int64(math.Round(v)), 10) + "ms"
}

func fmtRate(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", v*100)
}
