// Package balance chooses an endpoint for each request (HTTP) or connection (TCP).
package balance

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/linkerd-go/linkerd/proxy/metrics"
)

// Endpoint is one concrete address traffic can be sent to.
type Endpoint struct {
	Addr netip.AddrPort
	// Labels are the endpoint's metric labels, already prefixed (dst_namespace, dst_pod, ...).
	Labels metrics.Labels
	// Identity is the TLS identity the endpoint's proxy must present; "" when it is not meshed.
	Identity string
	// NoTLSReason says why the connection is not mTLS when Identity is "".
	NoTLSReason string
	// OpaqueTransportPort, when set (with Identity), is the peer proxy's
	// inbound port: opaque traffic goes there with a transport header naming
	// Addr's port, instead of to Addr.
	OpaqueTransportPort uint16
	// H2 is discovery's protocol hint that the endpoint's proxy (meshed,
	// with Identity) accepts HTTP/2 from its peers: HTTP/1.1 requests to
	// it may be carried over HTTP/2 (see h1.HeaderOrigProto).
	H2 bool
	// Weight is the endpoint's share of traffic relative to the other
	// endpoints of its balancer; 0 means DefaultWeight. Only ratios matter.
	Weight uint32
}

// Balancer picks endpoints. done is called once the request or connection
// finishes, with its error, so a latency-aware balancer can learn from it.
type Balancer interface {
	Pick(ctx context.Context) (ep *Endpoint, done func(error), err error)
}

// Single always picks one endpoint: forwarding to an original destination.
type Single struct{ Endpoint *Endpoint }

// Pick implements Balancer.
func (s Single) Pick(context.Context) (*Endpoint, func(error), error) {
	return s.Endpoint, noop, nil
}

func noop(error) {}

var _ Balancer = Single{}

// Algorithm is a balancing algorithm. A Service chooses one with the
// annotation balancer.linkerd-go.io/algorithm; discovery hands it to the
// destination's balancer (P2C.SetAlgorithm).
type Algorithm uint32

// The algorithms. Every one honours failure accrual (failing endpoints are
// ejected) and slow start (a new endpoint's share ramps up).
const (
	// PeakEWMA (the default, "peak-ewma") draws two endpoints and prefers
	// the one with the lower latency estimate × (in-flight + 1) / weight:
	// see P2C.
	PeakEWMA Algorithm = iota
	// LeastRequest ("least-request") draws two endpoints and takes the one
	// with fewer requests in flight relative to its weight; ties are broken
	// at random. It ignores latency.
	LeastRequest
	// RoundRobin ("round-robin") takes the endpoints in turn, skipping
	// ejected ones. It ignores weights, latency and load.
	RoundRobin
)

var algorithmNames = [...]string{PeakEWMA: "peak-ewma", LeastRequest: "least-request", RoundRobin: "round-robin"}

// String returns the algorithm's name as written in the annotation.
func (a Algorithm) String() string {
	if int(a) < len(algorithmNames) {
		return algorithmNames[a]
	}
	return fmt.Sprintf("Algorithm(%d)", uint32(a))
}

// ParseAlgorithm parses an algorithm name; "" is the default, PeakEWMA.
func ParseAlgorithm(s string) (Algorithm, error) {
	if s == "" {
		return PeakEWMA, nil
	}
	for a, name := range algorithmNames {
		if s == name {
			return Algorithm(a), nil
		}
	}
	return PeakEWMA, fmt.Errorf("unknown balancer algorithm %q (want peak-ewma, least-request or round-robin)", s)
}
