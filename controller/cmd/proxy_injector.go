package cmd

import (
	"flag"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/controller/injector"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// proxyInjectorOptions are the proxy-injector subcommand's flags.
type proxyInjectorOptions struct {
	webhookOptions
	controllerNS string
	kubeconfig   string
}

func (o *proxyInjectorOptions) addFlags(fs *flag.FlagSet) {
	o.webhookOptions.addFlags(fs, ":9995")
	fs.StringVar(&o.controllerNS, "controller-namespace", k8s.ControlPlaneNamespace, "namespace of the control plane, holding the "+k8s.ConfigMapName+" ConfigMap")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster configuration")
}

func newProxyInjectorCommand(env Env) *cobra.Command {
	return componentCommand(env, "proxy-injector", "Run the proxy injector, the admission webhook that adds the proxy to pods",
		func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error)) {
			o := &proxyInjectorOptions{}
			o.addFlags(fs)
			return o.log, func(log *slog.Logger) (component, error) { return newProxyInjectorComponent(o, log) }
		})
}

func newProxyInjectorComponent(o *proxyInjectorOptions, log *slog.Logger) (*webhookComponent, error) {
	c, err := newWebhookComponent("proxy injector", &o.webhookOptions, log, func(reg prometheus.Registerer) (webhookServer, error) {
		client, err := k8s.NewClientset(o.kubeconfig, "linkerd-proxy-injector")
		if err != nil {
			return nil, err
		}
		return injector.New(injector.Config{
			Client:              client,
			ControllerNamespace: o.controllerNS,
			Registerer:          reg,
			Logger:              log,
		})
	})
	if err != nil {
		return nil, err
	}
	c.logAttrs = []any{"controller_namespace", o.controllerNS}
	return c, nil
}
