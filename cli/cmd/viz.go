package cmd

import (
	"fmt"

	"github.com/spf13/cobra"
)

// vizOptions are the flags every `linkerd viz` command sees.
type vizOptions struct {
	// namespace is the extension's namespace (--viz-namespace); empty
	// means found by its label (vizcheck.FindNamespace), or linkerd-viz
	// for install.
	namespace string
	// apiAddr (--api-addr) is the metrics API's address; empty means
	// found: the local mesh at stateDir (--state-dir).
	apiAddr  string
	stateDir string
}

// newCmdViz is `linkerd viz`, the parent of the viz extension's commands.
func newCmdViz(global *GlobalOptions, env Env) *cobra.Command {
	opts := &vizOptions{}
	cmd := &cobra.Command{
		Use:   "viz",
		Short: "viz manages the linkerd-viz extension of Linkerd service mesh",
		Long: `viz manages the linkerd-viz extension of Linkerd service mesh: a
Prometheus scraping every proxy, the metrics API and the web dashboard.

  linkerd viz install | kubectl apply -f -
  linkerd viz check
  linkerd viz stat deploy -n demo

The commands reading metrics (stat, edges, routes, top) find the metrics
API, in this order: --api-addr; the local mesh at --state-dir when given;
with a kubeconfig, a port-forward to the extension's metrics-api pod; with
none, a local mesh up at the default state directory.`,
		// Without a verb: the help; with an unknown one: an error, as the
		// root command does.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.PersistentFlags().StringVar(&opts.namespace, "viz-namespace", "", "namespace of the linkerd-viz extension (default: found by its linkerd.io/extension=viz label; linkerd-viz for install)")
	vizMetricsCommands(cmd, global, opts)
	cmd.AddCommand(
		newCmdVizInstall(global, opts, env),
		newCmdVizUninstall(global, opts, env),
		newCmdVizCheck(global, opts, env),
		newCmdVizDashboard(global, opts),
	)
	return cmd
}
