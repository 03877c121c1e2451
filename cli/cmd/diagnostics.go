package cmd

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func newCmdDiagnostics(global *GlobalOptions, env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "diagnostics",
		Aliases: []string{"dg"},
		Short:   "Commands used to diagnose Linkerd components",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newCmdDiagnosticsEndpoints(global, env))
	cmd.AddCommand(newCmdDiagnosticsPolicy(global))
	cmd.AddCommand(newCmdDiagnosticsProxyMetrics(global))
	cmd.AddCommand(newCmdDiagnosticsControllerMetrics(global))
	return cmd
}

type endpointsOptions struct {
	destinationAddr string
	stateDir        string
	timeout         time.Duration
	output          string
}

func newCmdDiagnosticsEndpoints(global *GlobalOptions, _ Env) *cobra.Command {
	opts := &endpointsOptions{}
	cmd := &cobra.Command{
		Use:     "endpoints [flags] authority [authority...]",
		Aliases: []string{"ep"},
		Short:   "Show the endpoints the destination service gives for authorities",
		Long: `Show the endpoints the destination service gives for authorities.

An authority is a Service name with an optional port (80 by default), e.g.
web.emojivoto.svc.cluster.local:8080, or an IP address and port. The command
asks the destination API, as a proxy would, and prints its first answer:
the cluster's through a port-forward, or the local mesh's when there is no
kubeconfig (or --state-dir is given).`,
		Example: `  linkerd diagnostics endpoints web.emojivoto.svc.cluster.local:8080
  linkerd diagnostics endpoints -o json 10.42.0.7:8080`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.output != "table" && opts.output != "json" {
				return fmt.Errorf("--output must be table or json, not %q", opts.output)
			}
			if opts.timeout <= 0 {
				return fmt.Errorf("--timeout must be positive, not %s", opts.timeout)
			}
			addr, done, err := controlPlaneAPI(cmd, global, opts.destinationAddr, opts.stateDir, k8s.DestinationGRPCPort, localmesh.DestinationAddr)
			if err != nil {
				return err
			}
			defer done()
			opts.destinationAddr = addr
			return runEndpoints(cmd.Context(), cmd.OutOrStdout(), opts, args)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.destinationAddr, "destination-addr", "", "address of the destination API (host:port); default: the local mesh's, or a port-forward to linkerd-destination")
	addStateDirFlag(flags, &opts.stateDir)
	flags.DurationVar(&opts.timeout, "timeout", 10*time.Second, "how long to wait for the destination service's answer")
	flags.StringVarP(&opts.output, "output", "o", "table", "output format: table or json")
	return cmd
}

// endpointRow is one endpoint of the output; the JSON form is -o json's.
type endpointRow struct {
	Authority string            `json:"authority"`
	Namespace string            `json:"namespace"`
	IP        string            `json:"ip"`
	Port      uint32            `json:"port"`
	Pod       string            `json:"pod"`
	Service   string            `json:"service"`
	Identity  string            `json:"identity"`
	Weight    uint32            `json:"weight"`
	Hint      endpointHint      `json:"hint"`
	Labels    map[string]string `json:"labels"`
}

type endpointHint struct {
	H2                  bool   `json:"h2,omitempty"`
	Opaque              bool   `json:"opaque,omitempty"`
	OpaqueTransportPort uint32 `json:"opaqueTransportPort,omitempty"`
}

// String formats the hint for the table: "h2", "opaque",
// "opaque,transport:4143", or "-".
func (h endpointHint) String() string {
	var parts []string
	if h.H2 {
		parts = append(parts, "h2")
	}
	if h.Opaque {
		parts = append(parts, "opaque")
	}
	if h.OpaqueTransportPort != 0 {
		parts = append(parts, "transport:"+strconv.FormatUint(uint64(h.OpaqueTransportPort), 10))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// lookup is the first answer for one authority.
type lookup struct {
	rows []endpointRow
	// exists is false when the destination service does not know the authority.
	exists bool
	err    error
}

func runEndpoints(ctx context.Context, out io.Writer, opts *endpointsOptions, authorities []string) error {
	conn, err := grpc.NewClient(opts.destinationAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("destination service at %s: %w", opts.destinationAddr, err)
	}
	defer conn.Close()
	client := destinationv1.NewDestinationClient(conn)

	results := make([]lookup, len(authorities))
	var wg sync.WaitGroup
	for i, a := range authorities {
		wg.Go(func() { results[i] = firstUpdate(ctx, client, a, opts) })
	}
	wg.Wait()

	var rows []endpointRow
	var missing []string
	for i, r := range results {
		if r.err != nil {
			return r.err
		}
		if len(r.rows) == 0 {
			reason := "the service has no ready endpoints"
			if !r.exists {
				reason = "unknown to the destination service"
			}
			missing = append(missing, fmt.Sprintf("%s (%s)", authorities[i], reason))
		}
		rows = append(rows, r.rows...)
	}
	slices.SortStableFunc(rows, func(a, b endpointRow) int {
		return cmp.Or(
			cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Service, b.Service),
			cmp.Compare(a.Pod, b.Pod),
			compareIPs(a.IP, b.IP),
			cmp.Compare(a.Port, b.Port),
		)
	})
	if len(rows) > 0 {
		if err := printEndpoints(out, opts.output, rows); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no endpoints found for %s", strings.Join(missing, ", "))
	}
	return nil
}

// firstUpdate asks for authority and returns the destination service's
// first answer.
func firstUpdate(ctx context.Context, client destinationv1.DestinationClient, authority string, opts *endpointsOptions) lookup {
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	stream, err := client.Get(ctx, &destinationv1.GetRequest{Authority: authority})
	if err == nil {
		var u *destinationv1.Update
		if u, err = stream.Recv(); err == nil {
			return toLookup(authority, u)
		}
	}
	switch s, _ := status.FromError(err); s.Code() {
	case codes.InvalidArgument:
		// The message names the authority and what is wrong with it.
		return lookup{err: errors.New(s.Message())}
	case codes.DeadlineExceeded:
		return lookup{err: fmt.Errorf("no answer from the destination service at %s within %s", opts.destinationAddr, opts.timeout)}
	case codes.Unavailable:
		return lookup{err: fmt.Errorf("cannot reach the destination service at %s: %s", opts.destinationAddr, s.Message())}
	}
	return lookup{err: fmt.Errorf("looking up %s: %w", authority, err)}
}

func toLookup(authority string, u *destinationv1.Update) lookup {
	switch k := u.GetKind().(type) {
	case *destinationv1.Update_NoEndpoints:
		return lookup{exists: k.NoEndpoints.GetExists()}
	case *destinationv1.Update_Add:
		set := k.Add.GetMetricLabels()
		var rows []endpointRow
		for _, ep := range k.Add.GetEndpoints() {
			rows = append(rows, toRow(authority, set, ep))
		}
		return lookup{rows: rows, exists: true}
	}
	return lookup{err: errors.New("unexpected first update from the destination service: " + u.String())}
}

func toRow(authority string, set map[string]string, ep *destinationv1.Endpoint) endpointRow {
	ip := "invalid"
	if a, ok := netip.AddrFromSlice(ep.GetAddr().GetIp()); ok {
		ip = a.String()
	}
	labels := ep.GetMetricLabels()
	service := ""
	if s := set["service"]; s != "" {
		service = s + "." + set["namespace"]
	}
	return endpointRow{
		Authority: authority,
		Namespace: set["namespace"],
		IP:        ip,
		Port:      ep.GetAddr().GetPort(),
		Pod:       labels["pod"],
		Service:   service,
		Identity:  ep.GetTlsIdentity(),
		Weight:    ep.GetWeight(),
		Hint: endpointHint{
			H2:                  ep.GetHint().GetH2(),
			Opaque:              ep.GetHint().GetOpaque(),
			OpaqueTransportPort: ep.GetHint().GetOpaqueTransportPort(),
		},
		Labels: labels,
	}
}

func compareIPs(a, b string) int {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	if errX != nil || errY != nil {
		return cmp.Compare(a, b)
	}
	return x.Compare(y)
}

func printEndpoints(out io.Writer, format string, rows []endpointRow) error {
	if format == "json" {
		b, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding JSON: %w", err)
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	w := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(w, "NAMESPACE\tIP\tPORT\tPOD\tSERVICE\tIDENTITY\tHINT")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n",
			orDash(r.Namespace), r.IP, r.Port, orDash(r.Pod), orDash(r.Service), orDash(r.Identity), r.Hint)
	}
	return w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
