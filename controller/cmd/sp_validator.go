package cmd

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/controller/spvalidator"
	"github.com/linkerd-go/linkerd/controller/webhook"
)

func init() { register(newSPValidatorCommand) }

// spValidatorOptions are the sp-validator subcommand's flags.
type spValidatorOptions struct {
	addr      string
	adminAddr string
	tlsCert   string
	tlsKey    string
	log       *logFlags
}

func (o *spValidatorOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.addr, "addr", ":8443", "address to serve the admission webhook (HTTPS) on")
	fs.StringVar(&o.adminAddr, "admin-addr", ":9997", "address to serve /metrics, /ready and /live on")
	fs.StringVar(&o.tlsCert, "tls-cert", "/var/run/linkerd/tls/tls.crt", "webhook serving certificate (PEM), reloaded when it changes")
	fs.StringVar(&o.tlsKey, "tls-key", "/var/run/linkerd/tls/tls.key", "webhook serving key (PEM)")
	o.log = addLogFlags(fs)
}

func newSPValidatorCommand(env Env) *cobra.Command {
	return componentCommand(env, "sp-validator", "Run the ServiceProfile validator, the admission webhook that refuses invalid ServiceProfiles",
		func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error)) {
			o := &spValidatorOptions{}
			o.addFlags(fs)
			return o.log, func(log *slog.Logger) (component, error) { return newSPValidatorComponent(o, log) }
		})
}

// spValidatorComponent is a configured ServiceProfile validator.
type spValidatorComponent struct {
	opts     *spValidatorOptions
	log      *slog.Logger
	reg      *prometheus.Registry
	server   *spvalidator.Server
	certs    *webhook.CertLoader
	lis      net.Listener
	adminLis net.Listener
}

func newSPValidatorComponent(o *spValidatorOptions, log *slog.Logger) (*spValidatorComponent, error) {
	certs, err := webhook.NewCertLoader(o.tlsCert, o.tlsKey, log)
	if err != nil {
		return nil, usageError{err}
	}
	return &spValidatorComponent{opts: o, log: log, reg: newRegistry(), server: spvalidator.New(log), certs: certs}, nil
}

// listen binds the webhook and admin addresses.
func (c *spValidatorComponent) listen() (err error) {
	c.lis, c.adminLis, err = listenPair(c.opts.addr, c.opts.adminAddr)
	return err
}

// run serves until ctx is done (then drains and returns nil) or a server fails.
func (c *spValidatorComponent) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.log.Info("sp-validator started", "addr", c.lis.Addr().String(), "admin_addr", c.adminLis.Addr().String())

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
