// Package inbound is the proxy's server side: connections redirected to the
// inbound port (4143) are detected and forwarded to the application on their
// original port.
package inbound

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/linkerd-go/linkerd/proxy/authz"
	"github.com/linkerd-go/linkerd/proxy/detect"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/httpproxy"
	"github.com/linkerd-go/linkerd/proxy/meshtls"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/tcp"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// Config configures the inbound side.
type Config struct {
	// OpaquePorts skip protocol detection (server-speaks-first protocols).
	OpaquePorts    func(port uint16) bool
	DetectTimeout  time.Duration
	ConnectTimeout time.Duration
	// TLS, when set, terminates mesh TLS addressed to this proxy's identity.
	TLS *meshtls.Configs
	// Identity is this proxy's identity name (the SNI meshed peers send).
	Identity string
	// Tap, when set, is the tap layer of the request path.
	Tap pipeline.Layer
	// Authz, when set, is the inbound policy: unauthorized requests get
	// 403, unauthorized TCP connections are closed.
	Authz *authz.Policies
}

// Proxy handles inbound connections.
type Proxy struct {
	cfg     Config
	metrics *metrics.Registry
	log     *slog.Logger
	tcp     *tcp.Proxy
	http    *httpproxy.Server
}

// New returns the inbound proxy.
func New(cfg Config, reg *metrics.Registry, log *slog.Logger) *Proxy {
	log = log.With("direction", transport.Inbound)
	// The application is local: its connections are labelled as Linkerd does, loopback.
	resolver := discovery.OriginalDst{NoTLSReason: "loopback"}
	dialer := &transport.Dialer{Direction: transport.Inbound, Metrics: reg, Timeout: cfg.ConnectTimeout}
	opts := pipeline.InboundOptions{Registry: reg, Resolver: resolver, Tap: cfg.Tap}
	if cfg.Authz != nil {
		opts.Authz = &authz.Layer{Policies: cfg.Authz}
	}
	chain := pipeline.Inbound(opts)
	return &Proxy{
		cfg:     cfg,
		metrics: reg,
		log:     log,
		tcp:     &tcp.Proxy{Direction: transport.Inbound, Resolver: resolver, Dialer: dialer, Metrics: reg, Logger: log},
		http:    httpproxy.NewServer(httpproxy.Options{Chain: chain, Dialer: dialer, Logger: log, Metrics: reg, Direction: transport.Inbound}),
	}
}

// Handle serves one accepted connection; it owns c.
func (p *Proxy) Handle(ctx context.Context, c *net.TCPConn) {
	orig, redirected, err := transport.OriginalDst(c)
	if err != nil {
		p.log.Debug("no original destination", "client", c.RemoteAddr(), "err", err)
		p.errorCounter(orig, "unexpected").Inc()
		c.Close()
		return
	}
	client, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	plain := transport.NoIdentity("no_tls_from_remote")
	if client.Addr().Unmap().IsLoopback() {
		plain = transport.NoIdentity("loopback")
	}

	if redirected && p.opaque(orig.Port()) {
		if !p.allowTCP(c, orig, client, plain) {
			return
		}
		p.tcp.Serve(ctx, p.meter(c, orig, plain), discovery.Destination{Addr: orig}) //nolint:errcheck // counted and logged by Serve
		return
	}
	res, dc, err := detect.Detect(ctx, c, p.cfg.DetectTimeout)
	if err != nil {
		p.errorCounter(orig, "io").Inc()
		c.Close()
		return
	}
	if res.Protocol == detect.TLS && p.cfg.TLS != nil && res.SNI == p.cfg.Identity {
		p.serveMeshTLS(ctx, dc, orig, redirected, client)
		return
	}
	if !redirected {
		// Only mesh TLS with a transport header may address the inbound port itself.
		p.log.Debug("closing connection that was not redirected", "client", client)
		p.errorCounter(orig, "unexpected").Inc()
		dc.Close()
		return
	}
	p.serve(ctx, dc, res, orig, client, plain)
}

// serve forwards a detected connection to the application at orig.
func (p *Proxy) serve(ctx context.Context, dc net.Conn, res detect.Result, orig, client netip.AddrPort, status transport.TLS) {
	dst := discovery.Destination{Addr: orig}
	switch res.Protocol {
	case detect.HTTP1, detect.HTTP2:
		pc := &pipeline.Conn{Client: client, OrigDst: orig, TLS: status}
		mc := p.meter(dc, orig, status)
		if res.Protocol == detect.HTTP1 {
			p.http.ServeHTTP1(ctx, mc, pc) // returns when the connection ends
		} else {
			p.http.ServeH2(ctx, mc, pc)
		}
	case detect.TLS:
		// TLS for someone else (not our identity): passed through untouched.
		tls := transport.TLS{Mode: transport.TLSOpaque, SNI: res.SNI}
		if !p.allowTCP(dc, orig, client, tls) {
			return
		}
		p.tcp.Serve(ctx, p.meter(dc, orig, tls), dst) //nolint:errcheck
	default:
		if !p.allowTCP(dc, orig, client, status) {
			return
		}
		p.tcp.Serve(ctx, p.meter(dc, orig, status), dst) //nolint:errcheck
	}
}

// serveMeshTLS terminates mTLS from a meshed peer: the client's verified
// identity labels the traffic, which then goes to the application — to the
// port in the transport header when there is one, else the original port.
func (p *Proxy) serveMeshTLS(ctx context.Context, c net.Conn, orig netip.AddrPort, redirected bool, client netip.AddrPort) {
	tc := tls.Server(c, p.cfg.TLS.Server())
	hctx, cancel := context.WithTimeout(ctx, p.cfg.DetectTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		p.log.Debug("mesh TLS handshake failed", "client", client, "err", err)
		p.errorCounter(orig, "tls_handshake").Inc()
		c.Close()
		return
	}
	cs := tc.ConnectionState()
	status := transport.TLS{Mode: transport.TLSMeshed, ID: meshtls.PeerIdentity(cs)}
	target := orig
	if cs.NegotiatedProtocol == meshtls.ALPNTransport {
		_ = tc.SetReadDeadline(time.Now().Add(p.cfg.DetectTimeout))
		h, err := meshtls.ReadHeader(tc)
		_ = tc.SetReadDeadline(time.Time{})
		if err != nil {
			p.log.Debug("bad transport header", "client", client, "err", err)
			p.errorCounter(orig, "transport_header").Inc()
			tc.Close()
			return
		}
		// Opaque by the peer's choice: no detection.
		target = netip.AddrPortFrom(orig.Addr(), h.Port)
		if !p.allowTCP(tc, target, client, status) {
			return
		}
		p.tcp.Serve(ctx, p.meter(tc, target, status), discovery.Destination{Addr: target}) //nolint:errcheck
		return
	}
	if !redirected {
		p.log.Debug("mesh TLS to the inbound port without a transport header", "client", client)
		p.errorCounter(orig, "transport_header").Inc()
		tc.Close()
		return
	}
	res, dc, err := detect.Detect(ctx, tc, p.cfg.DetectTimeout)
	if err != nil {
		p.errorCounter(orig, "io").Inc()
		tc.Close()
		return
	}
	p.serve(ctx, dc, res, target, client, status)
}

// opaque reports whether port's traffic skips detection: configured so,
// or its Server says proxyProtocol: opaque.
func (p *Proxy) opaque(port uint16) bool {
	return (p.cfg.OpaquePorts != nil && p.cfg.OpaquePorts(port)) ||
		(p.cfg.Authz != nil && p.cfg.Authz.Protocol(port) == "opaque")
}

// allowTCP checks a TCP connection to the application's target against
// the inbound policy; a denied connection is closed.
func (p *Proxy) allowTCP(c net.Conn, target, client netip.AddrPort, status transport.TLS) bool {
	if p.cfg.Authz == nil || p.cfg.Authz.AuthorizeTCP(target, client, status) {
		return true
	}
	p.log.Debug("unauthorized connection closed", "client", client, "target", target, "tls", status.Mode)
	c.Close()
	return false
}

func (p *Proxy) meter(c net.Conn, orig netip.AddrPort, status transport.TLS) net.Conn {
	return transport.NewMeteredConn(c, p.metrics.TCP(
		transport.ConnLabels(transport.Inbound, transport.PeerSrc, orig, status.AcceptLabels(), nil)))
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
	p.http.CloseIdleConnections()
	return err
}
