package pipeline

import (
	"context"
	"fmt"

	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// ClientID (inbound) tells the application who called: a meshed client's
// verified identity goes in l5d-client-id; a value sent by anyone else is
// removed.
type ClientID struct{}

// OwnedFields implements Owner.
func (ClientID) OwnedFields() []string { return []string{HeaderClientID} }

// Serve implements Layer.
func (ClientID) Serve(ctx context.Context, x *Exchange) error {
	if tls := x.Conn.TLS; tls.Mode == transport.TLSMeshed && tls.ID != "" {
		x.AddField(HeaderClientID, tls.ID)
	}
	return x.Next(ctx)
}

// Dst names what a request asks for: its authority and the address its
// connection was going to; in ingress mode l5d-dst-override names it
// instead. With Canonical (outbound) the request carries the canonical name
// of the service it resolves to in l5d-dst-canonical, which only the proxy
// sets.
type Dst struct {
	Resolver  discovery.Resolver
	Ingress   bool
	Canonical bool
}

type canonicalEntry struct{ authority, name string }

// OwnedFields implements Owner.
func (l *Dst) OwnedFields() []string {
	if l.Canonical {
		return []string{HeaderDstCanonical}
	}
	return nil
}

// Serve implements Layer.
func (l *Dst) Serve(ctx context.Context, x *Exchange) error {
	host := x.Authority
	if l.Ingress && x.Header != nil {
		if o := x.Header.Get(HeaderDstOverride); o != "" {
			host = o
		}
	}
	x.Dst = discovery.Destination{Authority: host, Addr: x.Conn.OrigDst}
	if l.Canonical {
		// A canonical name depends on the authority alone: the last one is
		// kept on the connection.
		e := x.Conn.canonical.Load()
		if e == nil || e.authority != host {
			e = &canonicalEntry{authority: host, name: discovery.CanonicalName(l.Resolver, x.Dst)}
			x.Conn.canonical.Store(e)
		}
		if e.name != "" {
			x.AddField(HeaderDstCanonical, e.name)
		}
	}
	return x.Next(ctx)
}

// Balance picks the request's endpoint among its destination's and tells
// the balancer how the exchange went when it ends.
type Balance struct {
	Resolver discovery.Resolver
}

// Serve implements Layer.
func (l *Balance) Serve(ctx context.Context, x *Exchange) error {
	bal, err := l.Resolver.Resolve(ctx, x.Dst)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", x.Dst.Authority, err)
	}
	ep, done, err := bal.Pick(ctx)
	if err != nil {
		return fmt.Errorf("no endpoint for %s: %w", x.Dst.Authority, err)
	}
	x.Endpoint, x.done = ep, done
	return x.Next(ctx)
}

// End implements Ender.
func (l *Balance) End(x *Exchange) {
	if x.done != nil {
		x.done(x.Outcome())
		x.done = nil
	}
}

// OrigProto decides which HTTP/1.1 requests travel over HTTP/2 between
// meshed proxies (HeaderOrigProto). Outbound (Enabled), a request goes that
// way when its endpoint's proxy accepts it: discovery's h2 hint, mTLS, no
// opaque transport. Inbound, a request that arrived that way is marked, so
// that it goes to the application as HTTP/1.1.
type OrigProto struct {
	Direction string
	Enabled   bool
}

// Serve implements Layer.
func (l *OrigProto) Serve(ctx context.Context, x *Exchange) error {
	switch {
	case l.Direction == transport.Inbound:
		x.OrigProto = x.Proto == HTTP2 && x.Header != nil && x.Header.Get(HeaderOrigProto) != ""
	case l.Enabled && x.Proto == HTTP1:
		ep := x.Endpoint
		x.OrigProto = ep != nil && ep.H2 && ep.Identity != "" && ep.OpaqueTransportPort == 0
	}
	return x.Next(ctx)
}

var (
	_ Layer = ClientID{}
	_ Owner = ClientID{}
	_ Layer = (*Dst)(nil)
	_ Layer = (*Balance)(nil)
	_ Ender = (*Balance)(nil)
	_ Layer = (*OrigProto)(nil)
)
