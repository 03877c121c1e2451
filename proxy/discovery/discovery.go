// Package discovery turns a logical destination into a balancer over endpoints.
package discovery

import (
	"context"
	"errors"
	"net/netip"

	"github.com/linkerd-go/linkerd/proxy/balance"
)

// Destination is what the application asked for.
type Destination struct {
	// Authority is the HTTP authority (host:port) for HTTP traffic, "" for TCP.
	Authority string
	// Addr is the connection's original destination address; invalid when the
	// connection was not redirected (the client addressed the proxy itself).
	Addr netip.AddrPort
}

// Resolver returns a balancer for a destination.
type Resolver interface {
	Resolve(ctx context.Context, dst Destination) (balance.Balancer, error)
}

// ErrNoDestination means there is no address to forward to.
var ErrNoDestination = errors.New("no original destination and the authority is not an IP address")

// OriginalDst forwards every destination to its original address: the
// behaviour when no control plane knows the destination. Without an original
// address, an authority that is an IP:port is used.
type OriginalDst struct {
	// NoTLSReason labels the connections it makes (e.g. "not_provided_by_service_discovery").
	NoTLSReason string
}

// Resolve implements Resolver.
func (o OriginalDst) Resolve(_ context.Context, dst Destination) (balance.Balancer, error) {
	addr := dst.Addr
	if !addr.IsValid() {
		a, err := netip.ParseAddrPort(dst.Authority)
		if err != nil {
			return nil, ErrNoDestination
		}
		addr = a
	}
	return balance.Single{Endpoint: &balance.Endpoint{Addr: addr, NoTLSReason: o.NoTLSReason}}, nil
}

var _ Resolver = OriginalDst{}

// Namer is a Resolver that knows the canonical name of what it resolves
// (the service's fully qualified name and port), sent on as
// l5d-dst-canonical. The name depends on the destination's Authority alone
// (callers cache it per authority).
type Namer interface {
	CanonicalName(dst Destination) string
}

// CanonicalName is r's canonical name for dst, "" when r does not name it.
func CanonicalName(r Resolver, dst Destination) string {
	if n, ok := r.(Namer); ok {
		return n.CanonicalName(dst)
	}
	return ""
}
