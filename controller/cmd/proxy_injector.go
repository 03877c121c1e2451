package cmd

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/controller/injector"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

func init() { register(newProxyInjectorCommand) }

// proxyInjectorOptions are the proxy-injector subcommand's flags.
type proxyInjectorOptions struct {
	addr         string
	adminAddr    string
	tlsCert      string
	tlsKey       string
	controllerNS string
	kubeconfig   string
	log          *logFlags
}

func (o *proxyInjectorOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.addr, "addr", ":8443", "address to serve the admission webhook (HTTPS) on")
	fs.StringVar(&o.adminAddr, "admin-addr", ":9995", "address to serve /metrics, /ready and /live on")
	fs.StringVar(&o.tlsCert, "tls-cert", "/var/run/linkerd/tls/tls.crt", "webhook serving certificate (PEM), reloaded when it changes")
	fs.StringVar(&o.tlsKey, "tls-key", "/var/run/linkerd/tls/tls.key", "webhook serving key (PEM)")
	fs.StringVar(&o.controllerNS, "controller-namespace", k8s.ControlPlaneNamespace, "namespace of the control plane, holding the "+k8s.ConfigMapName+" ConfigMap")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster configuration")
	o.log = addLogFlags(fs)
}

func newProxyInjectorCommand(env Env) *cobra.Command {
	return componentCommand(env, "proxy-injector", "Run the proxy injector, the admission webhook that adds the proxy to pods",
		func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error)) {
			o := &proxyInjectorOptions{}
			o.addFlags(fs)
			return o.log, func(log *slog.Logger) (component, error) { return newProxyInjectorComponent(o, log) }
		})
}

// proxyInjectorComponent is a configured proxy injector.
type proxyInjectorComponent struct {
	opts     *proxyInjectorOptions
	log      *slog.Logger
	reg      *prometheus.Registry
	server   *injector.Server
	certs    *injector.CertLoader
	lis      net.Listener
	adminLis net.Listener
}

func newProxyInjectorComponent(o *proxyInjectorOptions, log *slog.Logger) (*proxyInjectorComponent, error) {
	certs, err := injector.NewCertLoader(o.tlsCert, o.tlsKey, log)
	if err != nil {
		return nil, usageError{err}
	}
	client, err := k8s.NewClientset(o.kubeconfig, "linkerd-proxy-injector")
	if err != nil {
		return nil, err
	}
	reg := newRegistry()
	server, err := injector.New(injector.Config{
		Client:              client,
		ControllerNamespace: o.controllerNS,
		Registerer:          reg,
		Logger:              log,
	})
	if err != nil {
		return nil, err
	}
	return &proxyInjectorComponent{opts: o, log: log, reg: reg, server: server, certs: certs}, nil
}

// listen binds the webhook and admin addresses.
func (c *proxyInjectorComponent) listen() (err error) {
	c.lis, c.adminLis, err = listenPair(c.opts.addr, c.opts.adminAddr)
	return err
}

// run serves until ctx is done (then drains and returns nil) or a server fails.
func (c *proxyInjectorComponent) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.log.Info("proxy injector started",
		"addr", c.lis.Addr().String(), "admin_addr", c.adminLis.Addr().String(),
		"controller_namespace", c.opts.controllerNS)

	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.server.Serve(ctx, c.lis, c.certs.TLSConfig()); err != nil {
			errc <- err
		}
	})
	wg.Go(func() {
		if err := serveHTTP(ctx, c.adminLis, adminHandler(c.reg, func() bool { return true }), c.log); err != nil {
			errc <- err
		}
	})

	var runErr error
	select {
	case <-ctx.Done():
		c.log.Info("shutting down")
	case runErr = <-errc:
	}
	cancel()
	wg.Wait()
	return runErr
}
