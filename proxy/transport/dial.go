package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/metrics"
)

// Dialer opens metered connections to endpoints.
type Dialer struct {
	Direction string
	Metrics   *metrics.Registry
	Timeout   time.Duration
	KeepAlive time.Duration
}

type endpointKey struct{}

// WithEndpoint records the endpoint a request is for, so DialContext can label the connection.
func WithEndpoint(ctx context.Context, ep *balance.Endpoint) context.Context {
	return context.WithValue(ctx, endpointKey{}, ep)
}

// Dial connects to an endpoint.
func (d *Dialer) Dial(ctx context.Context, ep *balance.Endpoint) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.Timeout, KeepAlive: d.KeepAlive}
	c, err := nd.DialContext(ctx, "tcp", ep.Addr.String())
	if err != nil {
		return nil, &ConnectError{Addr: ep.Addr, Err: err}
	}
	tls := NoIdentity(ep.NoTLSReason)
	if ep.Identity != "" {
		tls = TLS{Mode: "true", ID: ep.Identity}
	}
	m := d.Metrics.TCP(ConnLabels(d.Direction, PeerDst, ep.Addr, tls.ConnectLabels(), ep.Labels))
	return NewMeteredConn(c, m), nil
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
