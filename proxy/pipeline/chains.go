package pipeline

import (
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// The two chains, in order: adding a layer means writing it (one file) and
// adding it to one of these lists.

// InboundOptions configure the inbound chain.
type InboundOptions struct {
	Registry *metrics.Registry
	// Resolver finds the application's endpoint (its original destination).
	Resolver discovery.Resolver
	// Tap, when set, shows requests to the tap API (package tap).
	Tap Layer
	// Authz, when set, refuses unauthorized requests (package authz).
	Authz Layer
}

// Inbound returns the inbound chain: metrics → authz → client-id →
// orig-proto → dst → balance (the application) → tap, ended by the client
// engine.
func Inbound(o InboundOptions) *Chain {
	layers := withOptional([]Layer{&Metrics{Registry: o.Registry, Direction: transport.Inbound}}, o.Authz)
	return NewChain(withOptional(append(layers,
		ClientID{},
		&OrigProto{Direction: transport.Inbound},
		&Dst{},
		&Balance{Resolver: o.Resolver},
	), o.Tap)...)
}

// OutboundOptions configure the outbound chain.
type OutboundOptions struct {
	Registry *metrics.Registry
	Resolver discovery.Resolver
	// Ingress routes requests by l5d-dst-override (an ingress controller's proxy).
	Ingress bool
	// OrigProto carries HTTP/1.1 requests to meshed peers over HTTP/2.
	OrigProto bool
	// Tap, when set, shows requests to the tap API (package tap).
	Tap Layer
	// Route, when set, applies the destination's service profile routes
	// (package route), between dst and balance.
	Route Layer
}

// Outbound returns the outbound chain: metrics → dst (override, canonical
// name) → route → balance → orig-proto → tap, ended by the client engine.
func Outbound(o OutboundOptions) *Chain {
	return NewChain(withOptional(
		[]Layer{
			&Metrics{Registry: o.Registry, Direction: transport.Outbound},
			&Dst{Resolver: o.Resolver, Ingress: o.Ingress, Canonical: true},
		},
		o.Route,
		&Balance{Resolver: o.Resolver},
		&OrigProto{Direction: transport.Outbound, Enabled: o.OrigProto},
		o.Tap)...)
}

// withOptional appends the optional layers that are set.
func withOptional(layers []Layer, optional ...Layer) []Layer {
	for _, l := range optional {
		if l != nil {
			layers = append(layers, l)
		}
	}
	return layers
}
