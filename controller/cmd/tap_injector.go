package cmd

import (
	"errors"
	"flag"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/viz/tapinjector"
)

// tapInjectorOptions are the tap-injector subcommand's flags.
type tapInjectorOptions struct {
	webhookOptions
	tapIdentity string
	kubeconfig  string
}

func (o *tapInjectorOptions) addFlags(fs *flag.FlagSet) {
	o.webhookOptions.addFlags(fs, ":9995")
	fs.StringVar(&o.tapIdentity, "tap-identity", "", "identity of the tap service, given to the proxies as "+"LINKERD2_PROXY_TAP_SVC_NAME (required)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster configuration")
}

func newTapInjectorCommand(env Env) *cobra.Command {
	return componentCommand(env, "tap-injector", "Run viz's tap injector, the admission webhook that enables tap on meshed pods",
		func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error)) {
			o := &tapInjectorOptions{}
			o.addFlags(fs)
			return o.log, func(log *slog.Logger) (component, error) { return newTapInjectorComponent(o, log) }
		})
}

func newTapInjectorComponent(o *tapInjectorOptions, log *slog.Logger) (*webhookComponent, error) {
	if o.tapIdentity == "" {
		return nil, usageError{errors.New("-tap-identity is required")}
	}
	c, err := newWebhookComponent("tap injector", &o.webhookOptions, log, func(prometheus.Registerer) (webhookServer, error) {
		client, err := k8s.NewClientset(o.kubeconfig, "linkerd-tap-injector")
		if err != nil {
			return nil, err
		}
		return &tapinjector.Server{TapIdentity: o.tapIdentity, Client: client, Log: log}, nil
	})
	if err != nil {
		return nil, err
	}
	c.logAttrs = []any{"tap_identity", o.tapIdentity}
	return c, nil
}
