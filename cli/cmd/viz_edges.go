package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

type edgesOptions struct {
	namespace     string
	allNamespaces bool
	output        string
}

func newCmdVizEdges(global *GlobalOptions, vopts *vizOptions) *cobra.Command {
	opts := &edgesOptions{}
	cmd := &cobra.Command{
		Use:   "edges [flags] (RESOURCETYPE)",
		Short: "Display connections between resources, and Linkerd proxy identities",
		Long: `Display connections between resources, and Linkerd proxy identities.

RESOURCETYPE is deployment, statefulset, daemonset, job or pod (short forms
work). An edge is a source that sent requests to, or holds connections to, a
destination in the last minute; SECURED is √ when the connection is mTLS
(the identities are shown with -o wide).`,
		Example: `  linkerd viz edges deploy -n demo
  linkerd viz edges po -A -o wide`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(opts.output, "table", "wide", "json"); err != nil {
				return err
			}
			sel, err := client.ParseResource(opts.namespace, args[0])
			if err != nil {
				return err
			}
			if sel.Name != "" {
				return fmt.Errorf("edges takes a resource type, not a resource: %q", args[0])
			}
			resp, err := askMetricsAPI(cmd, global, vopts, func(ctx context.Context, c *client.Client) (*vizv1.EdgesResponse, error) {
				return c.Edges(ctx, &vizv1.EdgesRequest{Selector: sel, AllNamespaces: opts.allNamespaces})
			})
			if err != nil {
				return err
			}
			return printEdges(cmd.OutOrStdout(), opts.output, resp)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.namespace, "namespace", "n", "default", "namespace of the specified resource")
	flags.BoolVarP(&opts.allNamespaces, "all-namespaces", "A", false, "if present, returns edges across all namespaces, ignoring the --namespace flag")
	flags.StringVarP(&opts.output, "output", "o", "table", `output format; one of: "table", "wide" or "json"`)
	return cmd
}

type edgeJSON struct {
	Src          string `json:"src"`
	SrcNamespace string `json:"src_namespace"`
	Dst          string `json:"dst"`
	DstNamespace string `json:"dst_namespace"`
	ClientID     string `json:"client_id"`
	ServerID     string `json:"server_id"`
	NoTLSReason  string `json:"no_tls_reason"`
}

func printEdges(w io.Writer, format string, resp *vizv1.EdgesResponse) error {
	edges := resp.GetEdges()
	if format == "json" {
		out := make([]edgeJSON, 0, len(edges))
		for _, e := range edges {
			out = append(out, edgeJSON{
				Src: e.GetSrc().GetName(), SrcNamespace: e.GetSrc().GetNamespace(),
				Dst: e.GetDst().GetName(), DstNamespace: e.GetDst().GetNamespace(),
				ClientID: e.GetClientId(), ServerID: e.GetServerId(), NoTLSReason: e.GetNoTlsReason(),
			})
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	if len(edges) == 0 {
		_, err := fmt.Fprintln(w, "No edges found.")
		return err
	}
	t := &table{header: []string{"SRC", "DST", "SRC_NS", "DST_NS", "SECURED"}, left: 5}
	if format == "wide" {
		t.header = []string{"SRC", "DST", "SRC_NS", "DST_NS", "CLIENT_ID", "SERVER_ID", "MSG"}
		t.left = 7
	}
	for _, e := range edges {
		if format == "wide" {
			msg := e.GetNoTlsReason()
			t.add(e.GetSrc().GetName(), e.GetDst().GetName(), e.GetSrc().GetNamespace(), e.GetDst().GetNamespace(),
				orDash(e.GetClientId()), orDash(e.GetServerId()), orDash(msg))
			continue
		}
		secured := "√"
		if e.GetServerId() == "" {
			secured = "×"
		}
		t.add(e.GetSrc().GetName(), e.GetDst().GetName(), e.GetSrc().GetNamespace(), e.GetDst().GetNamespace(), secured)
	}
	return t.write(w)
}
