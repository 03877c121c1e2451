package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/charts"
	"github.com/linkerd-go/linkerd/charts/chartvalues"
	"github.com/linkerd-go/linkerd/pkg/version"
	"github.com/linkerd-go/linkerd/viz/grafana"
	"github.com/linkerd-go/linkerd/viz/vizcheck"
)

// vizReleaseName is the Helm release name the viz manifests are rendered as.
const vizReleaseName = "linkerd-viz"

type vizInstallOptions struct {
	ha            bool
	valueFiles    []string
	setValues     []string
	setStrings    []string
	output        string
	ignoreCluster bool
}

func newCmdVizInstall(global *GlobalOptions, viz *vizOptions, _ Env) *cobra.Command {
	opts := &vizInstallOptions{}
	cmd := &cobra.Command{
		Use:   "install [flags]",
		Short: "Output Kubernetes resources to install the linkerd-viz extension",
		Long: `Output Kubernetes resources to install the linkerd-viz extension: in the
linkerd-viz namespace, a Prometheus scraping every proxy of the control
plane, the metrics API and the web dashboard, all meshed.

The manifests come from the linkerd-viz Helm chart built into the CLI;
--set, --set-string and -f change its values as with Helm, e.g.
--set prometheusUrl=URL to use a Prometheus of your own (none is deployed)
or --set grafana.url=URL to link the dashboard to your Grafana. Unless
--ignore-cluster is given, the control plane must be installed: the
extension takes its namespace and cluster domain from it.`,
		Example: `  linkerd viz install | kubectl apply -f -
  linkerd viz install --ha | kubectl apply -f -
  linkerd viz install --set prometheusUrl=http://prometheus.monitoring.svc:9090 | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.output != "yaml" && opts.output != "json" {
				return fmt.Errorf("--output must be yaml or json, not %q", opts.output)
			}
			return runVizInstall(cmd.Context(), cmd.OutOrStdout(), global, viz, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.ha, "ha", false, "render a highly available extension (the chart's values-ha.yaml: 3 replicas of the metrics API and the dashboard, anti-affinity, PodDisruptionBudgets, resource requests)")
	f.StringArrayVar(&opts.setValues, "set", nil, "set a chart value (key=value, key.sub=value, list={a,b}); repeatable")
	f.StringArrayVar(&opts.setStrings, "set-string", nil, "set a chart value as a string; repeatable")
	f.StringArrayVarP(&opts.valueFiles, "values", "f", nil, "a YAML file of chart values; repeatable, later files win")
	f.StringVarP(&opts.output, "output", "o", "yaml", "output format: yaml or json")
	f.BoolVar(&opts.ignoreCluster, "ignore-cluster", false, "render without looking at the cluster (the control plane's namespace and cluster domain are then the flags' and the chart's defaults)")
	return cmd
}

func runVizInstall(ctx context.Context, stdout io.Writer, global *GlobalOptions, viz *vizOptions, opts *vizInstallOptions) error {
	ns := viz.namespace
	if ns == "" {
		ns = vizcheck.DefaultNamespace
	}
	if ns == global.LinkerdNamespace {
		return fmt.Errorf("the viz extension cannot be installed in the control plane's namespace %q: choose another --viz-namespace", ns)
	}
	// What the chart learns from the control plane.
	cluster := map[string]any{"linkerdNamespace": global.LinkerdNamespace}
	if !opts.ignoreCluster {
		kube, err := newKubeClient(global)
		if err != nil {
			return fmt.Errorf("%w (use --ignore-cluster to render without a cluster)", err)
		}
		installed, err := installedValues(ctx, kube, global.LinkerdNamespace)
		if errors.Is(err, errNotInstalled) {
			return fmt.Errorf("%w: install the control plane first (linkerd install | kubectl apply -f -), or give its namespace with --linkerd-namespace", err)
		}
		if err != nil {
			return err
		}
		if d := chartvalues.String(installed, "clusterDomain"); d != "" {
			cluster["clusterDomain"] = d
		}
		if td := chartvalues.String(installed, "identityTrustDomain"); td != "" {
			cluster["identityTrustDomain"] = td
		}
	}
	docs, err := renderViz(opts, ns, cluster)
	if err != nil {
		return err
	}
	return writeManifests(stdout, docs, opts.output)
}

// renderViz renders the linkerd-viz chart into namespace ns: the CLI's
// values (the Namespace object, the version), --ha's, what the cluster
// says, then the user's.
func renderViz(opts *vizInstallOptions, ns string, cluster map[string]any) ([]manifest, error) {
	user, err := (&renderOptions{valueFiles: opts.valueFiles, setValues: opts.setValues, setStrings: opts.setStrings}).userValues()
	if err != nil {
		return nil, err
	}
	dashboards, err := grafana.Files()
	if err != nil {
		return nil, err
	}
	files := make(map[string]any, len(dashboards))
	for name, b := range dashboards {
		files[name] = string(b)
	}
	layers := []map[string]any{{
		"installNamespace": true,
		"linkerdVersion":   version.Version,
		"cliVersion":       "linkerd/cli " + version.Version,
		"grafana":          map[string]any{"dashboardFiles": files},
	}}
	if opts.ha {
		b, err := charts.ReadFile(charts.Viz + "/values-ha.yaml")
		if err != nil {
			return nil, err
		}
		ha := map[string]any{}
		if err := yaml.Unmarshal(b, &ha); err != nil {
			return nil, fmt.Errorf("parsing %s/values-ha.yaml: %w", charts.Viz, err)
		}
		layers = append(layers, ha)
	}
	layers = append(layers, cluster, user)
	vals := map[string]any{}
	for _, l := range layers {
		vals = chartvalues.Merge(vals, l)
	}
	return renderChart(charts.Viz, vals, vizReleaseName, ns)
}
