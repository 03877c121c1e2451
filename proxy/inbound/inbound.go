// Package inbound is the proxy's server side: connections redirected to the
// inbound port (4143) are detected and forwarded to the application on their
// original port.
package inbound

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/linkerd-go/linkerd/proxy/detect"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/httpproxy"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/tcp"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// Config configures the inbound side.
type Config struct {
	// OpaquePorts skip protocol detection (server-speaks-first protocols).
	OpaquePorts    func(port uint16) bool
	DetectTimeout  time.Duration
	ConnectTimeout time.Duration
}

// Proxy handles inbound connections.
type Proxy struct {
	cfg     Config
	metrics *metrics.Registry
	log     *slog.Logger
	tcp     *tcp.Proxy
	hp      *httpproxy.Proxy
	http    *httpproxy.Server
}

// New returns the inbound proxy.
func New(cfg Config, reg *metrics.Registry, log *slog.Logger) *Proxy {
	log = log.With("direction", transport.Inbound)
	// The application is local: its connections are labelled as Linkerd does, loopback.
	resolver := discovery.OriginalDst{NoTLSReason: "loopback"}
	dialer := &transport.Dialer{Direction: transport.Inbound, Metrics: reg, Timeout: cfg.ConnectTimeout}
	hp := httpproxy.NewProxy(httpproxy.Options{
		Direction: transport.Inbound, Resolver: resolver, Dialer: dialer, Metrics: reg, Logger: log,
	})
	return &Proxy{
		cfg:     cfg,
		metrics: reg,
		log:     log,
		tcp:     &tcp.Proxy{Direction: transport.Inbound, Resolver: resolver, Dialer: dialer, Metrics: reg, Logger: log},
		hp:      hp,
		http:    httpproxy.NewServer(hp, log),
	}
}

// Handle serves one accepted connection; it owns c.
func (p *Proxy) Handle(ctx context.Context, c *net.TCPConn) {
	orig, redirected, err := transport.OriginalDst(c)
	if err != nil || !redirected {
		// Only iptables-redirected connections have an application port to go to.
		p.log.Debug("closing connection that was not redirected", "client", c.RemoteAddr(), "err", err)
		p.errorCounter(orig, "unexpected").Inc()
		c.Close()
		return
	}
	client, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	tls := transport.NoIdentity("no_tls_from_remote")
	if client.Addr().Unmap().IsLoopback() {
		tls = transport.NoIdentity("loopback")
	}
	dst := discovery.Destination{Addr: orig}

	if p.cfg.OpaquePorts != nil && p.cfg.OpaquePorts(orig.Port()) {
		p.tcp.Serve(ctx, p.meter(c, orig, tls), dst) //nolint:errcheck // counted and logged by Serve
		return
	}
	res, dc, err := detect.Detect(ctx, c, p.cfg.DetectTimeout)
	if err != nil {
		p.errorCounter(orig, "io").Inc()
		c.Close()
		return
	}
	switch res.Protocol {
	case detect.HTTP1, detect.HTTP2:
		info := &httpproxy.ConnInfo{Client: client, OrigDst: orig, TLS: tls}
		mc := p.meter(dc, orig, tls)
		if err := p.http.ServeConn(mc, info); err != nil {
			mc.Close()
		}
	case detect.TLS:
		// TLS for someone else (not our identity): passed through untouched.
		p.tcp.Serve(ctx, p.meter(dc, orig, transport.TLS{Mode: "opaque", SNI: res.SNI}), dst) //nolint:errcheck
	default:
		p.tcp.Serve(ctx, p.meter(dc, orig, tls), dst) //nolint:errcheck
	}
}

func (p *Proxy) meter(c net.Conn, orig netip.AddrPort, tls transport.TLS) net.Conn {
	return transport.NewMeteredConn(c, p.metrics.TCP(
		transport.ConnLabels(transport.Inbound, transport.PeerSrc, orig, tls.AcceptLabels(), nil)))
}

func (p *Proxy) errorCounter(target netip.AddrPort, reason string) *metrics.Counter {
	return p.metrics.Counter("inbound_tcp_errors_total",
		transport.TargetLabels(target).With(metrics.Label{Name: "error", Value: reason}))
}

// Shutdown drains HTTP connections: idle ones close, in-flight requests finish until ctx ends.
func (p *Proxy) Shutdown(ctx context.Context) error {
	err := p.http.Shutdown(ctx)
	if err != nil {
		p.http.Close()
	}
	p.hp.CloseIdleConnections()
	return err
}
