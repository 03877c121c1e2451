package cmd

import (
	"context"
	"crypto/tls"
	"flag"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkerd-go/linkerd/controller/webhook"
)

// webhookOptions are the flags every admission webhook takes.
type webhookOptions struct {
	addr      string
	adminAddr string
	tlsCert   string
	tlsKey    string
	log       *logFlags
}

func (o *webhookOptions) addFlags(fs *flag.FlagSet, defaultAdminAddr string) {
	fs.StringVar(&o.addr, "addr", ":8443", "address to serve the admission webhook (HTTPS) on")
	fs.StringVar(&o.adminAddr, "admin-addr", defaultAdminAddr, "address to serve /metrics, /ready and /live on")
	fs.StringVar(&o.tlsCert, "tls-cert", "/var/run/linkerd/tls/tls.crt", "webhook serving certificate (PEM), reloaded when it changes")
	fs.StringVar(&o.tlsKey, "tls-key", "/var/run/linkerd/tls/tls.key", "webhook serving key (PEM)")
	o.log = addLogFlags(fs)
}

// webhookServer is an admission webhook's server.
type webhookServer interface {
	Serve(ctx context.Context, lis net.Listener, tlsConfig *tls.Config) error
}

// webhookComponent is a configured admission webhook: its server on
// -addr, over TLS with the reloaded certificate, and the admin server.
type webhookComponent struct {
	name     string // in the log
	opts     *webhookOptions
	log      *slog.Logger
	reg      *prometheus.Registry
	certs    *webhook.CertLoader
	server   webhookServer
	logAttrs []any // more attributes of the "started" log line
	lis      net.Listener
	adminLis net.Listener
}

// newWebhookComponent loads the serving certificate first (a missing or
// invalid one is a usage error), then builds the server with newServer,
// which registers its metrics with reg.
func newWebhookComponent(name string, o *webhookOptions, log *slog.Logger, newServer func(reg prometheus.Registerer) (webhookServer, error)) (*webhookComponent, error) {
	certs, err := webhook.NewCertLoader(o.tlsCert, o.tlsKey, log)
	if err != nil {
		return nil, usageError{err}
	}
	reg := newRegistry()
	server, err := newServer(reg)
	if err != nil {
		return nil, err
	}
	return &webhookComponent{name: name, opts: o, log: log, reg: reg, certs: certs, server: server}, nil
}

// listen binds the webhook and admin addresses.
func (c *webhookComponent) listen() (err error) {
	c.lis, c.adminLis, err = listenPair(c.opts.addr, c.opts.adminAddr)
	return err
}

// run serves until ctx is done (then drains and returns nil) or a server fails.
func (c *webhookComponent) run(ctx context.Context) error {
	c.log.Info(c.name+" started", append([]any{"addr", c.lis.Addr().String(), "admin_addr", c.adminLis.Addr().String()}, c.logAttrs...)...)
	return runGroup(ctx, c.log, nil,
		func(ctx context.Context) error { return c.server.Serve(ctx, c.lis, c.certs.TLSConfig()) },
		serveAdmin(c.adminLis, c.reg, func() bool { return true }, c.log),
	)
}
