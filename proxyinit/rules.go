package proxyinit

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Chain names, table and the jumps into them, as in Linkerd's proxy-init.
const (
	Table         = "nat"
	RedirectChain = "PROXY_INIT_REDIRECT"
	OutputChain   = "PROXY_INIT_OUTPUT"
)

// maxMultiportSlots is the kernel's limit on ports in one multiport match;
// a range takes two slots.
const maxMultiportSlots = 15

// Family is an IP address family.
type Family int

// Address families.
const (
	IPv4 Family = iota
	IPv6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// loopback is the family's loopback subnet, never redirected.
func (f Family) loopback() string {
	if f == IPv6 {
		return "::1/128"
	}
	return "127.0.0.0/8"
}

func (f Family) contains(p netip.Prefix) bool {
	return p.Addr().Is4() == (f == IPv4)
}

// Rule is one rule's arguments after "-A CHAIN", written the way
// iptables-save prints them back (so -C finds them).
type Rule []string

// String joins the rule's arguments with spaces.
func (r Rule) String() string { return strings.Join(r, " ") }

// Chain is one of our chains and its rules, in order.
type Chain struct {
	Name  string
	Rules []Rule
}

// Jump is a rule appended to a built-in chain that jumps into one of ours.
type Jump struct {
	From string
	Rule Rule
}

// RuleSet is the complete configuration for one address family in the nat table.
type RuleSet struct {
	Family Family
	Chains []Chain
	Jumps  []Jump
}

// BuildRules computes the rule set for a family. It has no side effects.
func BuildRules(cfg Config, fam Family) (RuleSet, error) {
	if err := cfg.validate(); err != nil {
		return RuleSet{}, err
	}

	redirect := Chain{Name: RedirectChain}
	inboundIgnored := dedupe(append(slices.Clone(AlwaysIgnoredInboundPorts), cfg.InboundPortsToIgnore...))
	for _, ports := range multiportGroups(inboundIgnored) {
		redirect.Rules = append(redirect.Rules, Rule{"-p", "tcp", "-m", "multiport", "--dports", ports, "-j", "RETURN"})
	}
	toIncoming := []string{"-j", "REDIRECT", "--to-ports", strconv.Itoa(cfg.IncomingProxyPort)}
	if toRedirect := dedupe(cfg.PortsToRedirect); len(toRedirect) > 0 {
		for _, ports := range multiportGroups(toRedirect) {
			redirect.Rules = append(redirect.Rules, concat(Rule{"-p", "tcp", "-m", "multiport", "--dports", ports}, toIncoming))
		}
	} else {
		redirect.Rules = append(redirect.Rules, concat(Rule{"-p", "tcp"}, toIncoming))
	}

	output := Chain{Name: OutputChain}
	output.Rules = append(output.Rules, Rule{"-m", "owner", "--uid-owner", strconv.Itoa(cfg.ProxyUID), "-j", "RETURN"})
	if cfg.ProxyGID >= 0 {
		output.Rules = append(output.Rules, Rule{"-m", "owner", "--gid-owner", strconv.Itoa(cfg.ProxyGID), "-j", "RETURN"})
	}
	output.Rules = append(output.Rules,
		Rule{"-o", "lo", "-j", "RETURN"},
		Rule{"-d", fam.loopback(), "-j", "RETURN"},
	)
	for _, ports := range multiportGroups(dedupe(cfg.OutboundPortsToIgnore)) {
		output.Rules = append(output.Rules, Rule{"-p", "tcp", "-m", "multiport", "--dports", ports, "-j", "RETURN"})
	}
	seen := map[netip.Prefix]bool{}
	for _, subnet := range cfg.SubnetsToIgnore {
		subnet = subnet.Masked()
		if !fam.contains(subnet) || seen[subnet] {
			continue
		}
		seen[subnet] = true
		output.Rules = append(output.Rules, Rule{"-d", subnet.String(), "-j", "RETURN"})
	}
	output.Rules = append(output.Rules, Rule{"-p", "tcp", "-j", "REDIRECT", "--to-ports", strconv.Itoa(cfg.OutgoingProxyPort)})

	return RuleSet{
		Family: fam,
		Chains: []Chain{redirect, output},
		Jumps: []Jump{
			{From: "PREROUTING", Rule: Rule{"-p", "tcp", "-j", RedirectChain}},
			{From: "OUTPUT", Rule: Rule{"-p", "tcp", "-j", OutputChain}},
		},
	}, nil
}

// SaveLines returns the rule set as the "-A ..." lines iptables-save prints
// for it, in order.
func (rs RuleSet) SaveLines() []string {
	var lines []string
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			lines = append(lines, "-A "+c.Name+" "+r.String())
		}
	}
	for _, j := range rs.Jumps {
		lines = append(lines, "-A "+j.From+" "+j.Rule.String())
	}
	return lines
}

// Command is one iptables invocation (arguments without the binary). When
// OrElse is set it runs only if Args fails, like the shell's "a || b".
type Command struct {
	Args   []string
	OrElse []string
}

// Commands turns a rule set into iptables invocations that are safe to run
// repeatedly: each chain is created, or flushed if it already exists, then
// filled; each jump is appended only if a check (-C) does not find it.
func (rs RuleSet) Commands(useWait bool) []Command {
	base := []string{"-t", Table}
	if useWait {
		base = []string{"-w", "-t", Table}
	}
	var cmds []Command
	for _, c := range rs.Chains {
		cmds = append(cmds, Command{
			Args:   concat(base, []string{"-N", c.Name}),
			OrElse: concat(base, []string{"-F", c.Name}),
		})
		for _, r := range c.Rules {
			cmds = append(cmds, Command{Args: concat(base, []string{"-A", c.Name}, r)})
		}
	}
	for _, j := range rs.Jumps {
		cmds = append(cmds, Command{
			Args:   concat(base, []string{"-C", j.From}, j.Rule),
			OrElse: concat(base, []string{"-A", j.From}, j.Rule),
		})
	}
	return cmds
}

// dedupe drops repeated ranges, keeping the first occurrence's position.
func dedupe(ports []PortRange) []PortRange {
	var out []PortRange
	for _, p := range ports {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// multiportGroups packs ports into comma-separated lists that each fit one
// multiport match.
func multiportGroups(ports []PortRange) []string {
	var groups []string
	var cur []string
	slots := 0
	for _, p := range ports {
		if slots+p.multiportSlots() > maxMultiportSlots {
			groups = append(groups, strings.Join(cur, ","))
			cur, slots = nil, 0
		}
		cur = append(cur, p.iptablesArg())
		slots += p.multiportSlots()
	}
	if len(cur) > 0 {
		groups = append(groups, strings.Join(cur, ","))
	}
	return groups
}

func concat[S ~[]string](parts ...S) S {
	var out S
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
