package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
)

type policyDiagOptions struct {
	policyAddr string
	stateDir   string
	namespace  string
	timeout    time.Duration
	output     string
}

func newCmdDiagnosticsPolicy(global *GlobalOptions) *cobra.Command {
	opts := &policyDiagOptions{}
	cmd := &cobra.Command{
		Use:   "policy [flags] pod port",
		Short: "Show the inbound policy the policy controller gives a pod's port",
		Long: `Show the inbound policy the policy controller gives a pod's port.

The command asks the policy controller, as the pod's proxy would, and prints
its first answer for the port: the server that applies and the
authorizations that allow clients.`,
		Example: `  linkerd diagnostics policy -n emojivoto web-5f86686c4d-58p7k 8080`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.output != "table" && opts.output != "json" {
				return fmt.Errorf("--output must be table or json, not %q", opts.output)
			}
			port, err := strconv.ParseUint(args[1], 10, 16)
			if err != nil || port == 0 {
				return fmt.Errorf("port %q is not a port number", args[1])
			}
			addr, done, err := controlPlaneAPI(cmd, global, opts.policyAddr, opts.stateDir, k8s.PolicyGRPCPort, localmesh.PolicyAddr)
			if err != nil {
				return err
			}
			defer done()
			opts.policyAddr = addr
			return runDiagnosticsPolicy(cmd.Context(), cmd.OutOrStdout(), opts, args[0], uint16(port))
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.policyAddr, "policy-addr", "", "address of the policy controller (host:port); default: the local mesh's, or a port-forward to linkerd-destination")
	addStateDirFlag(flags, &opts.stateDir)
	flags.StringVarP(&opts.namespace, "namespace", "n", "default", "namespace of the pod")
	flags.DurationVar(&opts.timeout, "timeout", 10*time.Second, "how long to wait for the policy controller's answer")
	flags.StringVarP(&opts.output, "output", "o", "table", "output format: table or json")
	return cmd
}

func runDiagnosticsPolicy(ctx context.Context, out io.Writer, opts *policyDiagOptions, pod string, port uint16) error {
	conn, err := grpc.NewClient(opts.policyAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("policy controller at %s: %w", opts.policyAddr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	workload, _ := json.Marshal(map[string]string{"ns": opts.namespace, "pod": pod})
	stream, err := policyv1.NewInboundPolicyClient(conn).Watch(ctx, &policyv1.WatchRequest{Workload: string(workload)})
	if err == nil {
		var msg *policyv1.WorkloadPolicy
		if msg, err = stream.Recv(); err == nil {
			return printPortPolicy(out, opts.output, msg, port)
		}
	}
	return fmt.Errorf("policy controller at %s: %w", opts.policyAddr, err)
}

// printPortPolicy prints the policy of port from a workload's policy.
func printPortPolicy(out io.Writer, format string, msg *policyv1.WorkloadPolicy, port uint16) error {
	def, ports, err := inboundpolicy.FromProto(msg)
	if err != nil {
		return fmt.Errorf("the policy controller's answer: %w", err)
	}
	p, ok := ports[port]
	if !ok {
		p, p.Port = def, port
	}
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	fmt.Fprintf(out, "port %d: %s %s", p.Port, p.ServerKind, p.ServerName)
	if p.Protocol != "" {
		fmt.Fprintf(out, " (%s)", p.Protocol)
	}
	fmt.Fprintln(out)
	if len(p.Authorizations) == 0 {
		fmt.Fprintln(out, "no authorization: every client is denied")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "AUTHORIZATION\tNETWORKS\tCLIENTS")
	for _, a := range p.Authorizations {
		nets := []string{}
		for _, n := range a.Networks {
			s := n.Net.String()
			for _, e := range n.Except {
				s += " except " + e.String()
			}
			nets = append(nets, s)
		}
		clients := "unauthenticated"
		if !a.Unauthenticated {
			clients = strings.Join(a.Identities, ",")
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\n", a.Kind, a.Name, orDash(strings.Join(nets, ",")), clients)
	}
	return tw.Flush()
}
