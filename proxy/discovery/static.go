package discovery

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/linkerd-go/linkerd/proxy/balance"
)

// DefaultInboundPort is where meshed peers receive opaque traffic with a
// transport header.
const DefaultInboundPort = 4143

// Static resolves addresses from a fixed table of meshed endpoints and their
// identities, and everything else through Fallback. It bootstraps mTLS where
// no destination service answers (and serves tests); the destination
// service's answers replace it.
type Static struct {
	entries  map[string]staticEntry // "ip:port" or "ip"
	Fallback Resolver
}

type staticEntry struct {
	identity string
	opaque   bool
}

// ParseStatic parses comma-separated entries `ADDR=IDENTITY[;opaque]`, where
// ADDR is an IP (any port) or IP:port and ";opaque" sends traffic to the
// peer's inbound port with a transport header (its port skips detection).
func ParseStatic(s string, fallback Resolver) (*Static, error) {
	st := &Static{entries: map[string]staticEntry{}, Fallback: fallback}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		addr, rest, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("static endpoint %q: want ADDR=IDENTITY", item)
		}
		id, flag, _ := strings.Cut(rest, ";")
		e := staticEntry{identity: strings.TrimSpace(id)}
		switch strings.TrimSpace(flag) {
		case "":
		case "opaque":
			e.opaque = true
		default:
			return nil, fmt.Errorf("static endpoint %q: unknown flag %q", item, flag)
		}
		if e.identity == "" {
			return nil, fmt.Errorf("static endpoint %q: empty identity", item)
		}
		addr = strings.TrimSpace(addr)
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			st.entries[ap.String()] = e
		} else if ip, err := netip.ParseAddr(addr); err == nil {
			st.entries[ip.String()] = e
		} else {
			return nil, fmt.Errorf("static endpoint %q: %q is neither IP nor IP:port", item, addr)
		}
	}
	return st, nil
}

// Resolve implements Resolver.
func (s *Static) Resolve(ctx context.Context, dst Destination) (balance.Balancer, error) {
	if dst.Addr.IsValid() {
		e, ok := s.entries[dst.Addr.String()]
		if !ok {
			e, ok = s.entries[dst.Addr.Addr().Unmap().String()]
		}
		if ok {
			// A static endpoint is a meshed proxy, which takes HTTP/2 from
			// its peers (the hint the destination service gives by default).
			ep := &balance.Endpoint{Addr: dst.Addr, Identity: e.identity, H2: !e.opaque}
			if e.opaque {
				ep.OpaqueTransportPort = DefaultInboundPort
			}
			return balance.Single{Endpoint: ep}, nil
		}
	}
	return s.Fallback.Resolve(ctx, dst)
}

var _ Resolver = (*Static)(nil)

// CanonicalName implements Namer through the fallback.
func (s *Static) CanonicalName(dst Destination) string { return CanonicalName(s.Fallback, dst) }

var _ Namer = (*Static)(nil)
