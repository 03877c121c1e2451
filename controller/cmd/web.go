package cmd

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
	"github.com/linkerd-go/linkerd/viz/web"
)

// webOptions are the web subcommand's flags (Linkerd's viz web server).
type webOptions struct {
	addr           string
	adminAddr      string
	metricsAPIAddr string
	tapAddr        string
	grafanaURL     string
	enforcedHost   string
	log            *logFlags
}

func (o *webOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.addr, "addr", ":8084", "address to serve the dashboard on")
	fs.StringVar(&o.adminAddr, "admin-addr", ":9994", "address to serve /metrics, /ready and /live on")
	fs.StringVar(&o.metricsAPIAddr, "metrics-api-addr", fmt.Sprintf("metrics-api.linkerd-viz.svc.cluster.local:%d", client.DefaultPort), "address (host:port) of the viz metrics API")
	fs.StringVar(&o.tapAddr, "tap-addr", "", "address (host:port) of the viz tap service, for the dashboard's live calls (empty: no live calls)")
	fs.StringVar(&o.grafanaURL, "grafana-url", "", "URL of a Grafana with viz's dashboards, which the dashboard links to (empty: no links)")
	fs.StringVar(&o.enforcedHost, "enforced-host", web.DefaultEnforcedHost, "regular expression of the Host headers served besides IP addresses (DNS rebinding protection); empty: any")
	o.log = addLogFlags(fs)
}

func newWebCommand(env Env) *cobra.Command {
	return componentCommand(env, "web", "Run the viz dashboard's web server",
		func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error)) {
			o := &webOptions{}
			o.addFlags(fs)
			return o.log, func(log *slog.Logger) (component, error) { return newWebComponent(o, log) }
		})
}

type webComponent struct {
	opts          *webOptions
	log           *slog.Logger
	api           *client.Client
	tapConn       *grpc.ClientConn
	handler       *web.Handler
	reg           *prometheus.Registry
	lis, adminLis net.Listener
}

func newWebComponent(o *webOptions, log *slog.Logger) (*webComponent, error) {
	if _, _, err := net.SplitHostPort(o.metricsAPIAddr); err != nil {
		return nil, usageError{fmt.Errorf("-metrics-api-addr %q: want host:port", o.metricsAPIAddr)}
	}
	if o.grafanaURL != "" {
		u, err := url.Parse(o.grafanaURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usageError{fmt.Errorf("-grafana-url %q: want an http(s) URL", o.grafanaURL)}
		}
	}
	var enforced *regexp.Regexp
	if o.enforcedHost != "" {
		re, err := regexp.Compile(o.enforcedHost)
		if err != nil {
			return nil, usageError{fmt.Errorf("-enforced-host: %w", err)}
		}
		enforced = re
	}
	if o.tapAddr != "" {
		if _, _, err := net.SplitHostPort(o.tapAddr); err != nil {
			return nil, usageError{fmt.Errorf("-tap-addr %q: want host:port", o.tapAddr)}
		}
	}
	api, err := client.Dial(o.metricsAPIAddr)
	if err != nil {
		return nil, err
	}
	var tapConn *grpc.ClientConn
	var tapClient vizv1.TapServiceClient
	if o.tapAddr != "" {
		tapConn, err = grpc.NewClient(o.tapAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			api.Close()
			return nil, fmt.Errorf("tap service at %s: %w", o.tapAddr, err)
		}
		tapClient = vizv1.NewTapServiceClient(tapConn)
	}
	h, err := web.New(web.Config{
		Metrics:      web.NewMetricsClient(api),
		Tap:          tapClient,
		GrafanaURL:   o.grafanaURL,
		EnforcedHost: enforced,
		Log:          log,
	})
	if err != nil {
		api.Close()
		if tapConn != nil {
			tapConn.Close()
		}
		return nil, err
	}
	return &webComponent{opts: o, log: log, api: api, tapConn: tapConn, handler: h, reg: newRegistry()}, nil
}

func (c *webComponent) listen() (err error) {
	c.lis, c.adminLis, err = listenPair(c.opts.addr, c.opts.adminAddr)
	return err
}

func (c *webComponent) run(ctx context.Context) error {
	defer c.api.Close()
	if c.tapConn != nil {
		defer c.tapConn.Close()
	}
	c.log.Info("web server started", "addr", c.lis.Addr().String(), "admin_addr", c.adminLis.Addr().String(),
		"metrics_api_addr", c.opts.metricsAPIAddr, "tap_addr", c.opts.tapAddr, "grafana_url", c.opts.grafanaURL)
	return runGroup(ctx, c.log, nil,
		func(ctx context.Context) error { return serveHTTP(ctx, c.lis, c.handler, c.log) },
		serveAdmin(c.adminLis, c.reg, func() bool { return true }, c.log),
	)
}
