package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/linkerd-go/linkerd/pkg/k8s"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi"
)

// metricsAPIOptions are the metrics-api subcommand's flags.
type metricsAPIOptions struct {
	addr          string
	adminAddr     string
	prometheusURL string
	podSource     string
	kubeconfig    string
	log           *logFlags
}

func (o *metricsAPIOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.addr, "addr", ":8085", "address to serve the metrics API (gRPC) on")
	fs.StringVar(&o.adminAddr, "admin-addr", ":9995", "address to serve /metrics, /ready and /live on")
	fs.StringVar(&o.prometheusURL, "prometheus-url", "", "URL of the Prometheus holding the proxies' metrics (required)")
	fs.StringVar(&o.podSource, "pods", "kubernetes", `where pods are counted: "kubernetes" (the API server), or "prometheus" (its scrape targets; the local mesh)`)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster configuration (with -pods=kubernetes)")
	o.log = addLogFlags(fs)
}

func newMetricsAPICommand(env Env) *cobra.Command {
	return componentCommand(env, "metrics-api", "Run viz's metrics API: golden metrics per resource by PromQL over Prometheus",
		func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error)) {
			o := &metricsAPIOptions{}
			o.addFlags(fs)
			return o.log, func(log *slog.Logger) (component, error) { return newMetricsAPIComponent(o, log) }
		})
}

// metricsAPIComponent is a configured metrics API.
type metricsAPIComponent struct {
	opts     *metricsAPIOptions
	log      *slog.Logger
	reg      *prometheus.Registry
	server   *metricsapi.Server
	lis      net.Listener
	adminLis net.Listener
}

func newMetricsAPIComponent(o *metricsAPIOptions, log *slog.Logger) (*metricsAPIComponent, error) {
	if o.prometheusURL == "" {
		return nil, usageError{errors.New("-prometheus-url is required")}
	}
	var pods metricsapi.PodSource
	switch o.podSource {
	case "kubernetes":
		client, err := k8s.NewClientset(o.kubeconfig, "linkerd-metrics-api")
		if err != nil {
			return nil, err
		}
		pods = metricsapi.KubePods{Client: client}
	case "prometheus":
		if o.kubeconfig != "" {
			return nil, usageError{errors.New("-kubeconfig needs -pods=kubernetes")}
		}
	default:
		return nil, usageError{fmt.Errorf("-pods must be kubernetes or prometheus, not %q", o.podSource)}
	}
	server, err := metricsapi.NewServer(metricsapi.Config{PrometheusURL: o.prometheusURL, Pods: pods, Log: log})
	if err != nil {
		return nil, usageError{err}
	}
	return &metricsAPIComponent{opts: o, log: log, reg: newRegistry(), server: server}, nil
}

func (c *metricsAPIComponent) listen() (err error) {
	c.lis, c.adminLis, err = listenPair(c.opts.addr, c.opts.adminAddr)
	return err
}

// run serves until ctx is done.
func (c *metricsAPIComponent) run(ctx context.Context) error {
	gs := grpc.NewServer()
	vizv1.RegisterMetricsAPIServer(gs, c.server)
	c.log.Info("metrics API started", "addr", c.lis.Addr().String(), "admin_addr", c.adminLis.Addr().String(),
		"prometheus_url", c.opts.prometheusURL, "pods", c.opts.podSource)
	return runGroup(ctx, c.log, gs.GracefulStop,
		func(context.Context) error {
			if err := gs.Serve(c.lis); err != nil {
				return fmt.Errorf("metrics API gRPC server: %w", err)
			}
			return nil
		},
		serveAdmin(c.adminLis, c.reg, func() bool { return true }, c.log),
	)
}
