package cmd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"

	"github.com/linkerd-go/linkerd/viz/vizcheck"
)

func newCmdVizUninstall(global *GlobalOptions, viz *vizOptions, _ Env) *cobra.Command {
	return &cobra.Command{
		Use:   "uninstall",
		Short: "Output Kubernetes resources to uninstall the linkerd-viz extension",
		Long: `Output Kubernetes resources to uninstall the linkerd-viz extension.

Lists the extension's objects that exist in the cluster (its namespace, and
the cluster-wide RBAC) for kubectl to delete:

  linkerd viz uninstall | kubectl delete -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVizUninstall(cmd.Context(), cmd.OutOrStdout(), global, viz)
		},
	}
}

func runVizUninstall(ctx context.Context, stdout io.Writer, global *GlobalOptions, viz *vizOptions) error {
	cfg, kube, err := kubeClients(global)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	findCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ns, err := vizcheck.FindNamespace(findCtx, kube, viz.namespace)
	cancel()
	if err != nil {
		return err
	}
	// Everything the chart can render: its own Prometheus and the HA
	// objects included, so that whatever was installed is found.
	docs, err := renderViz(&vizInstallOptions{ha: true}, ns, map[string]any{"linkerdNamespace": global.LinkerdNamespace})
	if err != nil {
		return err
	}
	present, err := existingObjects(ctx, kube, dyn, docs)
	if err != nil {
		return err
	}
	if len(present) == 0 {
		return fmt.Errorf("no linkerd-viz resources found in the %s namespace: nothing to uninstall", ns)
	}
	return writeDeleteList(stdout, present)
}
