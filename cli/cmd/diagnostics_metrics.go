package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// metricsTarget is an admin endpoint whose /metrics a diagnostics command prints.
type metricsTarget struct {
	pod, container string
	addr           string
}

// localControlPlane lists the local mesh's control-plane components and
// their admin ports.
var localControlPlane = []struct {
	ns, pod, container string
	port               int
}{
	{localmesh.ControlPlaneNamespace, "linkerd-destination", "destination", 9996},
	{localmesh.ControlPlaneNamespace, "linkerd-identity", "identity", 9990},
	{localmesh.VizNamespace, "metrics-api", "metrics-api", 9995},
}

const proxyAdminPort = 4191

type metricsOptions struct {
	namespace string
	stateDir  string
	timeout   time.Duration
}

func (o *metricsOptions) addFlags(cmd *cobra.Command, withNS bool) {
	if withNS {
		cmd.Flags().StringVarP(&o.namespace, "namespace", "n", "default", "namespace of the resource")
	}
	addStateDirFlag(cmd.Flags(), &o.stateDir)
	cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for each answer")
}

// checkLocal errors out unless the command targets a running local mesh.
func (o *metricsOptions) checkLocal(cmd *cobra.Command, global *GlobalOptions) error {
	if !useLocalMesh(cmd, global) {
		return errors.New("reading metrics from Kubernetes pods is not supported yet: use kubectl port-forward to the pod's admin port (4191 for a proxy)")
	}
	if _, err := localmesh.FindWorkload(o.stateDir, localmesh.ControlPlaneNamespace, "linkerd-identity"); errors.Is(err, localmesh.ErrNotUp) {
		return fmt.Errorf("no kubeconfig and no local mesh up at %s: start one (linkerd local up)", o.stateDir)
	}
	return nil
}

func newCmdDiagnosticsProxyMetrics(global *GlobalOptions) *cobra.Command {
	opts := &metricsOptions{}
	cmd := &cobra.Command{
		Use:   "proxy-metrics [flags] (RESOURCE)",
		Short: "Fetch metrics directly from Linkerd proxies",
		Long: `Fetch metrics directly from Linkerd proxies: the /metrics of the proxy
admin port (4191) of the resource's pods, each headed by the pod's name.

RESOURCE is a pod or deployment of the local mesh ("po/web", "deploy/web";
a local mesh workload is one pod named like it).`,
		Example: `  linkerd diagnostics proxy-metrics -n demo deploy/web`,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := client.ParseResource(opts.namespace, args...)
			if err != nil {
				return err
			}
			if r.Kind != client.KindPod && r.Kind != client.KindDeployment {
				return fmt.Errorf("proxy-metrics takes a pod or deployment, not a %s", r.Kind)
			}
			if r.Name == "" {
				return fmt.Errorf("proxy-metrics needs a %s name", r.Kind)
			}
			if err := opts.checkLocal(cmd, global); err != nil {
				return err
			}
			w, err := localmesh.FindWorkload(opts.stateDir, r.Namespace, r.Name)
			if err != nil {
				return fmt.Errorf("%s/%s not found in namespace %s", r.Kind, r.Name, r.Namespace)
			}
			t := metricsTarget{pod: w.Name, addr: net.JoinHostPort(w.IP.String(), strconv.Itoa(proxyAdminPort))}
			return printMetrics(cmd.Context(), cmd.OutOrStdout(), opts.timeout, []metricsTarget{t})
		},
	}
	opts.addFlags(cmd, true)
	return cmd
}

func newCmdDiagnosticsControllerMetrics(global *GlobalOptions) *cobra.Command {
	opts := &metricsOptions{}
	cmd := &cobra.Command{
		Use:   "controller-metrics",
		Short: "Fetch metrics directly from Linkerd control plane containers",
		Long: `Fetch metrics directly from Linkerd control plane containers: the /metrics
of each component's admin port, each headed by its pod and container.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.checkLocal(cmd, global); err != nil {
				return err
			}
			var targets []metricsTarget
			for _, c := range localControlPlane {
				w, err := localmesh.FindWorkload(opts.stateDir, c.ns, c.pod)
				if err != nil {
					continue // e.g. no metrics API without Prometheus
				}
				targets = append(targets, metricsTarget{pod: w.Name, container: c.container, addr: net.JoinHostPort(w.IP.String(), strconv.Itoa(c.port))})
			}
			return printMetrics(cmd.Context(), cmd.OutOrStdout(), opts.timeout, targets)
		},
	}
	opts.addFlags(cmd, false)
	return cmd
}

// printMetrics prints each target's /metrics under a header; it fails on
// the first target that does not answer.
func printMetrics(ctx context.Context, w io.Writer, timeout time.Duration, targets []metricsTarget) error {
	hc := &http.Client{Timeout: timeout}
	for i, t := range targets {
		body, err := fetchMetrics(ctx, hc, t.addr)
		if err != nil {
			return fmt.Errorf("metrics of pod %s: %w", t.pod, err)
		}
		fmt.Fprintf(w, "#\n# POD %s (%d of %d)\n", t.pod, i+1, len(targets))
		if t.container != "" {
			fmt.Fprintf(w, "# CONTAINER %s\n", t.container)
		}
		fmt.Fprintf(w, "#\n%s", body)
	}
	return nil
}

func fetchMetrics(ctx context.Context, hc *http.Client, addr string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET http://%s/metrics: %s", addr, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET http://%s/metrics: %w", addr, err)
	}
	return b, nil
}
