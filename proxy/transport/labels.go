package transport

import (
	"net/netip"
	"strconv"

	"github.com/linkerd-go/linkerd/proxy/metrics"
)

// Directions and peers as Linkerd labels them.
const (
	Inbound  = "inbound"
	Outbound = "outbound"
	PeerSrc  = "src" // connections the proxy accepted
	PeerDst  = "dst" // connections the proxy opened
)

// TargetLabels are target_addr, target_ip and target_port for an address.
func TargetLabels(addr netip.AddrPort) metrics.Labels {
	return metrics.Labels{
		{Name: "target_addr", Value: addr.String()},
		{Name: "target_ip", Value: addr.Addr().Unmap().String()},
		{Name: "target_port", Value: strconv.Itoa(int(addr.Port()))},
	}
}

// TLS describes how a connection is (or is not) secured, for metric labels.
type TLS struct {
	// Mode is "true", "no_identity", "opaque" (TLS passed through) or "disabled".
	Mode string
	// ID is the peer's identity: client_id on accepted connections, server_id on opened ones.
	ID string
	// Reason is no_tls_reason when Mode is "no_identity".
	Reason string
	// SNI is the passed-through server name when Mode is "opaque".
	SNI string
}

// NoIdentity returns a plaintext TLS status with a reason.
func NoIdentity(reason string) TLS { return TLS{Mode: "no_identity", Reason: reason} }

// AcceptLabels renders the TLS labels of an accepted connection.
func (t TLS) AcceptLabels() metrics.Labels { return t.labels("client_id") }

// ConnectLabels renders the TLS labels of a connection the proxy opened.
func (t TLS) ConnectLabels() metrics.Labels { return t.labels("server_id") }

func (t TLS) labels(idName string) metrics.Labels {
	switch t.Mode {
	case "true":
		return metrics.Labels{{Name: "tls", Value: "true"}, {Name: idName, Value: t.ID}}
	case "no_identity":
		return metrics.Labels{{Name: "tls", Value: "no_identity"}, {Name: "no_tls_reason", Value: t.Reason}}
	case "opaque":
		return metrics.Labels{{Name: "tls", Value: "opaque"}, {Name: "sni", Value: t.SNI}}
	default:
		return metrics.Labels{{Name: "tls", Value: "disabled"}}
	}
}

// ConnLabels are the labels of a tcp_* series: direction, peer, target, TLS, then extra (dst_*).
func ConnLabels(direction, peer string, target netip.AddrPort, tls metrics.Labels, extra metrics.Labels) metrics.Labels {
	l := make(metrics.Labels, 0, 8+len(extra))
	l = append(l, metrics.Label{Name: "direction", Value: direction}, metrics.Label{Name: "peer", Value: peer})
	l = append(l, TargetLabels(target)...)
	l = append(l, tls...)
	return append(l, extra...)
}
