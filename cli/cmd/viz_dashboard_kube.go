package cmd

import (
	"context"
	"fmt"
	"net"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/linkerd-go/linkerd/cli/portforward"
	"github.com/linkerd-go/linkerd/viz/vizcheck"
)

// webPodPort is the viz web server's port in its pod.
const webPodPort = 8084

// kubeDashboard port-forwards to a ready web pod of the viz extension in
// the cluster the global flags name; the dashboard's local port then
// forwards to that.
func kubeDashboard(ctx context.Context, global *GlobalOptions, opts *vizOptions) (*dashboardBackend, error) {
	cfg, kube, err := kubeClients(global)
	if err != nil {
		return nil, err
	}
	findCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ns, err := vizcheck.FindNamespace(findCtx, kube, opts.namespace)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: install it with linkerd viz install | kubectl apply -f -", err)
	}
	if err != nil {
		return nil, err
	}
	sel := labels.Set{vizcheck.ExtensionLabel: vizcheck.ExtensionName, vizcheck.ComponentLabel: vizcheck.WebName}.String()
	f, err := portforward.ToComponent(findCtx, cfg, ns, sel, 0, webPodPort)
	if err != nil {
		return nil, fmt.Errorf("reaching the dashboard: %w", err)
	}
	var d net.Dialer
	return &dashboardBackend{
		what:  fmt.Sprintf("pod %s/%s", ns, f.Pod),
		dial:  func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", f.Addr) },
		close: f.Close,
	}, nil
}
