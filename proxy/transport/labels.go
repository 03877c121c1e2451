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

// TLSMode is how a connection is secured, as the tls metric label says it.
type TLSMode string

// TLS modes.
const (
	// TLSMeshed is mutual TLS between meshed proxies, identities verified.
	TLSMeshed TLSMode = "true"
	// TLSNoIdentity is plaintext, for the reason in TLS.Reason.
	TLSNoIdentity TLSMode = "no_identity"
	// TLSOpaque is someone else's TLS, passed through untouched.
	TLSOpaque TLSMode = "opaque"
	// TLSDisabled is the zero status.
	TLSDisabled TLSMode = "disabled"
)

// TLS describes how a connection is (or is not) secured, for metric labels.
type TLS struct {
	Mode TLSMode
	// ID is the peer's identity: client_id on accepted connections, server_id on opened ones.
	ID string
	// Reason is no_tls_reason when Mode is "no_identity".
	Reason string
	// SNI is the passed-through server name when Mode is "opaque".
	SNI string
}

// NoIdentity returns a plaintext TLS status with a reason.
func NoIdentity(reason string) TLS { return TLS{Mode: TLSNoIdentity, Reason: reason} }

// AcceptLabels renders the TLS labels of an accepted connection.
func (t TLS) AcceptLabels() metrics.Labels { return t.labels("client_id") }

// ConnectLabels renders the TLS labels of a connection the proxy opened.
func (t TLS) ConnectLabels() metrics.Labels { return t.labels("server_id") }

func (t TLS) labels(idName string) metrics.Labels {
	switch t.Mode {
	case TLSMeshed:
		return metrics.Labels{{Name: "tls", Value: string(TLSMeshed)}, {Name: idName, Value: t.ID}}
	case TLSNoIdentity:
		return metrics.Labels{{Name: "tls", Value: string(TLSNoIdentity)}, {Name: "no_tls_reason", Value: t.Reason}}
	case TLSOpaque:
		return metrics.Labels{{Name: "tls", Value: string(TLSOpaque)}, {Name: "sni", Value: t.SNI}}
	default:
		return metrics.Labels{{Name: "tls", Value: string(TLSDisabled)}}
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
