// Package outbound is the proxy's client side: the application's connections,
// redirected to the outbound port (4140), are detected and sent to an
// endpoint of their destination chosen by a resolver and a balancer.
package outbound

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/linkerd-go/linkerd/proxy/detect"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/httpproxy"
	"github.com/linkerd-go/linkerd/proxy/meshtls"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/tcp"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// Config configures the outbound side.
type Config struct {
	DetectTimeout  time.Duration
	ConnectTimeout time.Duration
	// Resolver finds endpoints; nil forwards to the original destination.
	Resolver discovery.Resolver
	// OpaquePorts skip protocol detection.
	OpaquePorts func(port uint16) bool
	// TLS, when set, secures connections to meshed endpoints.
	TLS *meshtls.Configs
	// IngressMode routes HTTP requests by their l5d-dst-override header.
	IngressMode bool
	// H2Upgrade carries HTTP/1.1 requests to meshed peers that accept
	// HTTP/2 over HTTP/2 (see httpproxy.Options.H2Upgrade), on at most
	// H2Connections connections per peer.
	H2Upgrade     bool
	H2Connections int
	// Tap, when set, is the tap layer of the request path.
	Tap pipeline.Layer
	// Route, when set, is the route layer (service profiles).
	Route pipeline.Layer
}

// Proxy handles outbound connections.
type Proxy struct {
	cfg     Config
	metrics *metrics.Registry
	log     *slog.Logger
	tcp     *tcp.Proxy
	http    *httpproxy.Server
}

// New returns the outbound proxy.
func New(cfg Config, reg *metrics.Registry, log *slog.Logger) *Proxy {
	log = log.With("direction", transport.Outbound)
	if cfg.Resolver == nil {
		cfg.Resolver = discovery.OriginalDst{NoTLSReason: "not_provided_by_service_discovery"}
	}
	dialer := &transport.Dialer{Direction: transport.Outbound, Metrics: reg, Timeout: cfg.ConnectTimeout, TLS: cfg.TLS}
	chain := pipeline.Outbound(pipeline.OutboundOptions{
		Registry: reg, Resolver: cfg.Resolver, Ingress: cfg.IngressMode, OrigProto: cfg.H2Upgrade && cfg.TLS != nil, Tap: cfg.Tap,
		Route: cfg.Route,
	})
	return &Proxy{
		cfg:     cfg,
		metrics: reg,
		log:     log,
		tcp:     &tcp.Proxy{Direction: transport.Outbound, Resolver: cfg.Resolver, Dialer: dialer, Metrics: reg, Logger: log},
		http:    httpproxy.NewServer(httpproxy.Options{Chain: chain, Dialer: dialer, Logger: log, Metrics: reg, Direction: transport.Outbound, H2Spread: cfg.H2Connections}),
	}
}

// The application's own connections to the proxy are local.
var acceptTLS = transport.NoIdentity("loopback")

// Handle serves one accepted connection; it owns c.
func (p *Proxy) Handle(ctx context.Context, c *net.TCPConn) {
	orig, redirected, err := transport.OriginalDst(c)
	if err != nil || !redirected {
		// Not redirected: the client spoke to the proxy's port itself and the
		// destination can only come from the HTTP authority.
		orig = netip.AddrPort{}
	}
	client, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	dst := discovery.Destination{Addr: orig}
	if orig.IsValid() && p.cfg.OpaquePorts != nil && p.cfg.OpaquePorts(orig.Port()) {
		p.tcp.Serve(ctx, p.meter(c, orig), dst) //nolint:errcheck // counted and logged by Serve
		return
	}
	res, dc, err := detect.Detect(ctx, c, p.cfg.DetectTimeout)
	if err != nil {
		p.metrics.Counter("outbound_tcp_errors_total",
			transport.TargetLabels(orig).With(metrics.Label{Name: "error", Value: "io"})).Inc()
		c.Close()
		return
	}
	switch {
	case res.Protocol == detect.HTTP1 || res.Protocol == detect.HTTP2:
		pc := &pipeline.Conn{Client: client, OrigDst: orig, TLS: acceptTLS}
		mc := p.meter(dc, orig)
		if res.Protocol == detect.HTTP1 {
			p.http.ServeHTTP1(ctx, mc, pc) // returns when the connection ends
		} else {
			p.http.ServeH2(ctx, mc, pc)
		}
	case !orig.IsValid():
		p.log.Debug("closing non-HTTP connection with no original destination", "client", client)
		p.metrics.Counter("outbound_tcp_errors_total",
			transport.TargetLabels(orig).With(metrics.Label{Name: "error", Value: "no_destination"})).Inc()
		dc.Close()
	default:
		p.tcp.Serve(ctx, p.meter(dc, orig), dst) //nolint:errcheck
	}
}

func (p *Proxy) meter(c net.Conn, orig netip.AddrPort) net.Conn {
	return transport.NewMeteredConn(c, p.metrics.TCP(
		transport.ConnLabels(transport.Outbound, transport.PeerSrc, orig, acceptTLS.AcceptLabels(), nil)))
}

// Shutdown drains HTTP connections until ctx ends.
func (p *Proxy) Shutdown(ctx context.Context) error {
	err := p.http.Shutdown(ctx)
	if err != nil {
		p.http.Close()
	}
	p.http.CloseIdleConnections()
	return err
}
