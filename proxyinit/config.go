// Package proxyinit configures a pod's iptables NAT rules so that all TCP
// traffic into and out of the pod goes through the Linkerd proxy. It is the
// implementation behind the linkerd-init binary (Linkerd's proxy-init).
//
// The rule set is computed by the pure function BuildRules; Run applies it
// (or prints it, when simulating) with the iptables binaries. Without them
// (or with FirewallMode nftables) Run writes the same rules, computed by
// BuildNftRules, through netlink into an nftables table of its own.
package proxyinit

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Defaults matching Linkerd's proxy-init.
const (
	DefaultIncomingProxyPort = 4143
	DefaultOutgoingProxyPort = 4140
	DefaultProxyUID          = 2102
)

// AlwaysIgnoredInboundPorts are the proxy's own control (4190) and admin
// (4191) ports. Inbound traffic to them is never redirected, whatever the
// configuration says.
var AlwaysIgnoredInboundPorts = []PortRange{{First: 4190, Last: 4190}, {First: 4191, Last: 4191}}

// Config describes the firewall configuration to apply.
type Config struct {
	// IncomingProxyPort is where inbound TCP is redirected (proxy inbound listener).
	IncomingProxyPort int
	// OutgoingProxyPort is where outbound TCP is redirected (proxy outbound listener).
	OutgoingProxyPort int
	// ProxyUID is the proxy's user id; its own outbound traffic is not redirected.
	ProxyUID int
	// ProxyGID, when >= 0, additionally exempts traffic from this group id.
	ProxyGID int

	// InboundPortsToIgnore are inbound destination ports that bypass the
	// proxy, in addition to AlwaysIgnoredInboundPorts.
	InboundPortsToIgnore []PortRange
	// OutboundPortsToIgnore are outbound destination ports that bypass the proxy.
	OutboundPortsToIgnore []PortRange
	// PortsToRedirect, when non-empty, restricts inbound redirection to these ports.
	PortsToRedirect []PortRange
	// SubnetsToIgnore are outbound destinations that bypass the proxy. Each
	// family only uses the subnets of its own address family.
	SubnetsToIgnore []netip.Prefix

	// IPv6 also applies the rules with ip6tables.
	IPv6 bool
	// FirewallMode is how the rules are written: ModeIPTables with the
	// iptables binaries, ModeNftables through netlink (no binary needed),
	// or ModeAuto (empty): iptables when a binary is configured or found
	// on PATH, nftables otherwise.
	FirewallMode string
	// FirewallBinPath is the iptables binary; empty means auto-detect
	// (iptables-nft, then iptables-legacy, then iptables).
	FirewallBinPath string
	// FirewallSaveBinPath is the iptables-save binary; empty means
	// FirewallBinPath + "-save".
	FirewallSaveBinPath string
	// UseWaitFlag passes -w to iptables so it waits for the xtables lock.
	UseWaitFlag bool

	// TimeoutCloseWaitSecs, when > 0, sets
	// net.netfilter.nf_conntrack_tcp_timeout_close_wait. Failure is logged, not fatal.
	TimeoutCloseWaitSecs int
	// Simulate prints the commands instead of running them.
	Simulate bool
	// NetNS, when set, is the path of a network namespace to configure
	// (e.g. /var/run/netns/NAME or /proc/PID/ns/net).
	NetNS string
}

// Firewall modes.
const (
	ModeAuto     = "auto"
	ModeIPTables = "iptables"
	ModeNftables = "nftables"
)

// DefaultConfig returns the configuration linkerd-init uses without flags.
func DefaultConfig() Config {
	return Config{
		IncomingProxyPort: DefaultIncomingProxyPort,
		OutgoingProxyPort: DefaultOutgoingProxyPort,
		ProxyUID:          DefaultProxyUID,
		ProxyGID:          -1,
	}
}

// PortRange is an inclusive range of TCP ports; a single port has First == Last.
type PortRange struct {
	First, Last uint16
}

// String formats the range the way flags accept it: "80" or "1000-2000".
func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// iptablesArg formats the range for the multiport match: "80" or "1000:2000".
func (r PortRange) iptablesArg() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d:%d", r.First, r.Last)
}

// multiportSlots is how many of multiport's 15 slots the range uses.
func (r PortRange) multiportSlots() int {
	if r.First == r.Last {
		return 1
	}
	return 2
}

// ParsePortRanges parses port specifications such as "80", "1000-2000" or
// "80,443,8000-8080". Each element may itself be a comma-separated list;
// empty elements and surrounding spaces are ignored.
func ParsePortRanges(specs []string) ([]PortRange, error) {
	var out []PortRange
	for _, spec := range specs {
		for item := range strings.SplitSeq(spec, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			r, err := parsePortRange(item)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func parsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	first, err := parsePort(lo)
	if err != nil {
		return PortRange{}, fmt.Errorf("invalid port %q: %w", s, err)
	}
	if !isRange {
		return PortRange{First: first, Last: first}, nil
	}
	last, err := parsePort(hi)
	if err != nil {
		return PortRange{}, fmt.Errorf("invalid port range %q: %w", s, err)
	}
	if last < first {
		return PortRange{}, fmt.Errorf("invalid port range %q: end is before start", s)
	}
	return PortRange{First: first, Last: last}, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil {
		return 0, fmt.Errorf("not a number between 1 and 65535")
	}
	if n == 0 {
		return 0, fmt.Errorf("port 0 is not allowed")
	}
	return uint16(n), nil
}

// ParseSubnets parses CIDRs ("10.0.0.0/8", "fd00::/8"); each element may be
// a comma-separated list. Host bits are cleared, so "10.1.2.3/8" becomes
// "10.0.0.0/8" (the form iptables reports back).
func ParseSubnets(specs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, spec := range specs {
		for item := range strings.SplitSeq(spec, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("invalid subnet %q: %w", item, err)
			}
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

// validate checks the fields BuildRules depends on.
func (c Config) validate() error {
	for _, p := range []struct {
		name string
		v    int
	}{{"incoming proxy port", c.IncomingProxyPort}, {"outgoing proxy port", c.OutgoingProxyPort}} {
		if p.v < 1 || p.v > 65535 {
			return fmt.Errorf("%s %d is not between 1 and 65535", p.name, p.v)
		}
	}
	if c.ProxyUID < 0 {
		return fmt.Errorf("proxy uid %d is negative", c.ProxyUID)
	}
	switch c.FirewallMode {
	case "", ModeAuto, ModeIPTables, ModeNftables:
	default:
		return fmt.Errorf("firewall mode %q is not %s, %s or %s", c.FirewallMode, ModeAuto, ModeIPTables, ModeNftables)
	}
	if c.TimeoutCloseWaitSecs < 0 {
		return fmt.Errorf("close-wait timeout %d is negative", c.TimeoutCloseWaitSecs)
	}
	return nil
}
