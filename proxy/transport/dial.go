package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/meshtls"
	"github.com/linkerd-go/linkerd/proxy/metrics"
)

// Dialer opens metered connections to endpoints, with mTLS to endpoints
// that have an identity.
type Dialer struct {
	Direction string
	Metrics   *metrics.Registry
	Timeout   time.Duration
	KeepAlive time.Duration
	// TLS, when set, secures connections to endpoints with an identity.
	TLS *meshtls.Configs
}

type endpointKey struct{}

// WithEndpoint records the endpoint a request is for, so DialContext can label the connection.
func WithEndpoint(ctx context.Context, ep *balance.Endpoint) context.Context {
	return context.WithValue(ctx, endpointKey{}, ep)
}

// Dial connects to an endpoint.
func (d *Dialer) Dial(ctx context.Context, ep *balance.Endpoint) (net.Conn, error) {
	mesh := ep.Identity != "" && d.TLS != nil
	addr, alpn := ep.Addr, ""
	if mesh && ep.OpaqueTransportPort != 0 {
		addr, alpn = netip.AddrPortFrom(ep.Addr.Addr(), ep.OpaqueTransportPort), meshtls.ALPNTransport
	}
	nd := net.Dialer{Timeout: d.Timeout, KeepAlive: d.KeepAlive}
	c, err := nd.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, &ConnectError{Addr: addr, Err: err}
	}
	status := TLS{Mode: TLSNoIdentity, Reason: ep.NoTLSReason}
	switch {
	case mesh:
		if c, err = d.handshake(ctx, c, ep, alpn); err != nil {
			return nil, &ConnectError{Addr: addr, Err: err}
		}
		status = TLS{Mode: TLSMeshed, ID: ep.Identity}
	case ep.Identity != "":
		status.Reason = "disabled" // meshed peer, but this proxy has no identity
	}
	m := d.Metrics.TCP(ConnLabels(d.Direction, PeerDst, ep.Addr, status.ConnectLabels(), ep.Labels))
	return NewMeteredConn(c, m), nil
}

// handshake secures c with mTLS to the endpoint's proxy, checking it proves
// the endpoint's identity; with the transport ALPN it sends the header.
func (d *Dialer) handshake(ctx context.Context, c net.Conn, ep *balance.Endpoint, alpn string) (net.Conn, error) {
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	tc := tls.Client(c, d.TLS.Client(ep.Identity, alpn))
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("mTLS handshake with %s: %w", ep.Identity, err)
	}
	if alpn != "" {
		if got := tc.ConnectionState().NegotiatedProtocol; got != alpn {
			tc.Close()
			return nil, fmt.Errorf("peer proxy %s did not accept %s (ALPN %q)", ep.Identity, alpn, got)
		}
		if err := meshtls.WriteHeader(tc, meshtls.Header{Port: ep.Addr.Port()}); err != nil {
			tc.Close()
			return nil, fmt.Errorf("send transport header: %w", err)
		}
	}
	return tc, nil
}

// DialContext is a net/http Transport dialer: the endpoint comes from the
// request context (WithEndpoint), or from the address alone.
func (d *Dialer) DialContext(ctx context.Context, _, addr string) (net.Conn, error) {
	if ep, ok := ctx.Value(endpointKey{}).(*balance.Endpoint); ok && ep.Addr.String() == addr {
		return d.Dial(ctx, ep)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return d.Dial(ctx, &balance.Endpoint{Addr: ap})
}

// ConnectError is a failure to connect to an endpoint.
type ConnectError struct {
	Addr netip.AddrPort
	Err  error
}

func (e *ConnectError) Error() string { return fmt.Sprintf("connect to %s: %v", e.Addr, e.Err) }
func (e *ConnectError) Unwrap() error { return e.Err }

// ErrorReason is a short, stable name for why a connection or request failed,
// used as the `error` metric label.
func ErrorReason(err error) string {
	var ce *ConnectError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &ce) && errors.As(err, &ne) && ne.Timeout():
		return "connect_timeout"
	case errors.As(err, &ce) && errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.As(err, &ce):
		return "connect_error"
	case errors.As(err, &ne) && ne.Timeout():
		return "response_timeout"
	default:
		return "unexpected"
	}
}
