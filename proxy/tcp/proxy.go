package tcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// Proxy forwards an accepted connection to an endpoint of its destination:
// resolve → pick → connect → copy.
type Proxy struct {
	Direction string
	Resolver  discovery.Resolver
	Dialer    *transport.Dialer
	Metrics   *metrics.Registry
	Logger    *slog.Logger
}

// Serve forwards client to dst and closes client when done.
func (p *Proxy) Serve(ctx context.Context, client net.Conn, dst discovery.Destination) error {
	defer client.Close()
	err := p.serve(ctx, client, dst)
	if err != nil {
		reason := transport.ErrorReason(err)
		p.Metrics.Counter(p.Direction+"_tcp_errors_total",
			transport.TargetLabels(dst.Addr).With(metrics.Label{Name: "error", Value: reason})).Inc()
		p.Logger.Debug("tcp forward failed", "dst", dst.Addr, "client", client.RemoteAddr(), "err", err)
	}
	return err
}

func (p *Proxy) serve(ctx context.Context, client net.Conn, dst discovery.Destination) error {
	bal, err := p.Resolver.Resolve(ctx, dst)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dst.Addr, err)
	}
	ep, done, err := bal.Pick(ctx)
	if err != nil {
		return fmt.Errorf("pick endpoint for %s: %w", dst.Addr, err)
	}
	server, err := p.Dialer.Dial(ctx, ep)
	if err != nil {
		done(err)
		return err
	}
	defer server.Close()
	err = Forward(ctx, client, server)
	done(err)
	return err
}
