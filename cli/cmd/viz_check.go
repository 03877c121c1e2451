package cmd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/cli/healthcheck"
	"github.com/linkerd-go/linkerd/viz/vizcheck"
)

func newCmdVizCheck(global *GlobalOptions, viz *vizOptions, _ Env) *cobra.Command {
	opts := &checkOptions{output: healthcheck.TableOutput, wait: healthcheck.DefaultWait}
	cmd := &cobra.Command{
		Use:   "check [flags]",
		Short: "Check the Linkerd Viz extension for potential problems",
		Long: `Check the Linkerd Viz extension for potential problems.

The check command will perform a series of checks to validate that the
Linkerd Viz extension is configured correctly: its namespace, RBAC, pods and
proxies, Prometheus and the metrics API; with --proxy, that every meshed
pod's metrics reach Prometheus. It exits with status 1 when a check fails.`,
		Example: `  # Check that the viz extension is up and running
  linkerd viz check`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case opts.namespace != "" && !opts.proxy:
				return errors.New("--namespace selects the data-plane checks' namespace: use it with --proxy")
			case opts.wait <= 0:
				return fmt.Errorf("--wait must be positive, got %s", opts.wait)
			}
			deps := newCheckDeps(global)
			checker := &vizcheck.Checker{Namespace: viz.namespace, MetricsAPI: deps.vizMetricsAPI}
			categories := append(healthcheck.KubernetesAPICategories(), checker.Categories(opts.proxy)...)
			return runCategories(cmd.Context(), categories, opts, global, deps, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	flags := cmd.Flags()
	flags.BoolVar(&opts.proxy, "proxy", false, "also run the data-plane checks, to determine if the meshed pods' metrics reach Prometheus")
	flags.StringVarP(&opts.namespace, "namespace", "n", "", "namespace to use for --proxy checks (default: all namespaces)")
	flags.StringVarP(&opts.output, "output", "o", opts.output, "output format: one of "+strings.Join(healthcheck.Outputs, ", "))
	flags.DurationVar(&opts.wait, "wait", opts.wait, "maximum allowed time for all tests to pass")
	return cmd
}
