package cmd

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"

	"github.com/linkerd-go/linkerd/cli/portforward"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
	"github.com/linkerd-go/linkerd/viz/vizcheck"
)

// kubeMetricsAPI port-forwards a local port to a metrics-api pod of the
// viz extension in the cluster the global flags name, as Linkerd's CLI
// does, and returns its address and what stops it.
func kubeMetricsAPI(ctx context.Context, global *GlobalOptions, opts *vizOptions) (string, func(), error) {
	cfg, kube, err := kubeClients(global)
	if err != nil {
		return "", nil, err
	}
	findCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ns, err := vizcheck.FindNamespace(findCtx, kube, opts.namespace)
	if apierrors.IsNotFound(err) {
		return "", nil, fmt.Errorf("%w: install it with linkerd viz install | kubectl apply -f -", err)
	}
	if err != nil {
		return "", nil, err
	}
	return forwardMetricsAPI(findCtx, cfg, ns)
}

// forwardMetricsAPI port-forwards a local port to a metrics-api pod in the
// viz namespace ns.
func forwardMetricsAPI(ctx context.Context, cfg *rest.Config, ns string) (string, func(), error) {
	sel := labels.Set{vizcheck.ExtensionLabel: vizcheck.ExtensionName, vizcheck.ComponentLabel: vizcheck.MetricsAPIName}.String()
	f, err := portforward.ToComponent(ctx, cfg, ns, sel, 0, client.DefaultPort)
	if err != nil {
		return "", nil, fmt.Errorf("reaching the metrics API: %w", err)
	}
	return f.Addr, f.Close, nil
}

// vizCheckMetricsAPI is vizcheck.Checker's MetricsAPI in a cluster: a
// gRPC client over a port-forward to the metrics API.
func vizCheckMetricsAPI(global *GlobalOptions) func(ctx context.Context, ns string) (client.API, func(), error) {
	return func(ctx context.Context, ns string) (client.API, func(), error) {
		cfg, err := restConfig(global)
		if err != nil {
			return nil, nil, err
		}
		addr, stop, err := forwardMetricsAPI(ctx, cfg, ns)
		if err != nil {
			return nil, nil, err
		}
		c, err := client.Dial(addr)
		if err != nil {
			stop()
			return nil, nil, err
		}
		return c, func() { _ = c.Close(); stop() }, nil
	}
}
