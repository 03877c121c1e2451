// Package inboundpolicy is what a proxy enforces on its inbound ports: per
// port, the server that applies and the authorizations that allow clients
// (by network and mesh identity), resolved from the policy resources
// (package pkg/apis/policy) by a pure function, Resolve. The policy
// controller resolves; the proxy only evaluates (Port.Authorize).
package inboundpolicy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
)

// Kinds of the servers and authorizations in metric labels.
const (
	KindDefault             = "default"
	KindServer              = "server"
	KindServerAuthorization = "serverauthorization"
	KindAuthorizationPolicy = "authorizationpolicy"
)

// Network is a client network with exceptions.
type Network struct {
	Net    netip.Prefix   `json:"cidr"`
	Except []netip.Prefix `json:"except,omitempty"`
}

// Contains reports whether a is in n and not in its exceptions.
func (n Network) Contains(a netip.Addr) bool {
	if !n.Net.Contains(a) {
		return false
	}
	for _, e := range n.Except {
		if e.Contains(a) {
			return false
		}
	}
	return true
}

// Authorization allows the clients in one of its networks (every client
// when Networks is empty) that are unauthenticated-allowed or have one of
// its identities ("*" any identity, "*.suffix" a suffix).
type Authorization struct {
	Kind            string    `json:"kind"`
	Name            string    `json:"name"`
	Networks        []Network `json:"networks,omitempty"`
	Unauthenticated bool      `json:"unauthenticated"`
	Identities      []string  `json:"identities,omitempty"`
}

// Allows reports whether the client at addr with mesh identity id ("" when
// none) is allowed.
func (a *Authorization) Allows(addr netip.Addr, id string) bool {
	if len(a.Networks) > 0 {
		addr = addr.Unmap()
		in := false
		for _, n := range a.Networks {
			if n.Contains(addr) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	if a.Unauthenticated {
		return true
	}
	if id == "" {
		return false
	}
	for _, want := range a.Identities {
		if MatchIdentity(want, id) {
			return true
		}
	}
	return false
}

// MatchIdentity matches an identity against a pattern: exact, "*" or "*.suffix".
func MatchIdentity(pattern, id string) bool {
	switch {
	case pattern == "*":
		return id != ""
	case strings.HasPrefix(pattern, "*."):
		return strings.HasSuffix(id, pattern[1:]) && len(id) > len(pattern)-1
	default:
		return pattern == id
	}
}

// Port is the policy of one inbound port.
type Port struct {
	// Port is 0 for the workload's default (ports no Server selects).
	Port       uint16 `json:"port"`
	ServerKind string `json:"serverKind"`
	ServerName string `json:"serverName"`
	// Protocol is the Server's proxyProtocol ("" or unknown: detect).
	Protocol       string          `json:"protocol,omitempty"`
	Authorizations []Authorization `json:"authorizations"`
	// Routes are the Server's HTTPRoutes: when there are any, an HTTP
	// request must match one (MatchRoute) and is authorized by its
	// authorizations; Authorizations still decide TCP connections.
	Routes []Route `json:"routes,omitempty"`
}

// Authorize returns the authorization that allows the client, or nil.
func (p *Port) Authorize(addr netip.Addr, id string) *Authorization {
	for i := range p.Authorizations {
		if p.Authorizations[i].Allows(addr, id) {
			return &p.Authorizations[i]
		}
	}
	return nil
}

// AllNetworks are every IPv4 and IPv6 address.
var AllNetworks = []Network{{Net: netip.MustParsePrefix("0.0.0.0/0")}, {Net: netip.MustParsePrefix("::/0")}}

// DefaultAuthorizations returns the authorizations of a default policy
// (policy.AllUnauthenticated...), nil for deny or an unknown name.
func DefaultAuthorizations(name string, cluster []Network) []Authorization {
	a := Authorization{Kind: KindDefault, Name: name}
	switch name {
	case policy.AllUnauthenticated, policy.Audit:
		a.Networks, a.Unauthenticated = AllNetworks, true
	case policy.ClusterUnauthenticated:
		a.Networks, a.Unauthenticated = cluster, true
	case policy.AllAuthenticated:
		a.Networks, a.Identities = AllNetworks, []string{"*"}
	case policy.ClusterAuthenticated:
		a.Networks, a.Identities = cluster, []string{"*"}
	default:
		return nil
	}
	return []Authorization{a}
}

// Default is the policy of a port no Server selects, under default policy name.
func Default(name string, cluster []Network) Port {
	return Port{ServerKind: KindDefault, ServerName: name, Authorizations: DefaultAuthorizations(name, cluster)}
}

// ParseNetworks parses a comma-separated list of CIDRs (or addresses).
func ParseNetworks(s string) ([]Network, error) {
	var out []Network
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := parsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("invalid network %q", f)
		}
		out = append(out, Network{Net: p})
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
