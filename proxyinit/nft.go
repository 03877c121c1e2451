package proxyinit

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// NftTable is the nftables table linkerd-init owns in nftables mode, in
// the ip family (and ip6 with IPv6). It is replaced whole on every run.
const NftTable = "linkerd_proxy_init"

// nftBaseChains are the table's chains hooked into the nat stage, at
// the priority of iptables' nat table: prerouting jumps to RedirectChain,
// output to OutputChain.
var nftBaseChains = []struct{ Name, Hook, Jump string }{
	{"PREROUTING", "prerouting", RedirectChain},
	{"OUTPUT", "output", OutputChain},
}

// NftRule is one rule of nftables mode: its matches (all must hold) and
// its verdict. It says what the iptables rule of the same place says.
type NftRule struct {
	Chain string
	// TCP matches TCP (meta l4proto tcp).
	TCP bool
	// DPort, when set, matches a TCP destination port range.
	DPort *PortRange
	// SkUID and SkGID, when >= 0, match the socket owner.
	SkUID, SkGID int
	// OIfName, when set, matches the output interface.
	OIfName string
	// DAddr, when valid, matches the destination subnet.
	DAddr netip.Prefix
	// Verdict: return, jump (to Jump) or redirect (to RedirectPort).
	Verdict      string
	Jump         string
	RedirectPort uint16
}

// String formats the rule the way `nft list table` prints it.
func (r NftRule) String() string {
	var parts []string
	if r.TCP && r.DPort == nil {
		parts = append(parts, "meta l4proto tcp")
	}
	if r.DPort != nil {
		parts = append(parts, "tcp dport "+r.DPort.String())
	}
	if r.SkUID >= 0 {
		parts = append(parts, "meta skuid "+strconv.Itoa(r.SkUID))
	}
	if r.SkGID >= 0 {
		parts = append(parts, "meta skgid "+strconv.Itoa(r.SkGID))
	}
	if r.OIfName != "" {
		parts = append(parts, "oifname "+strconv.Quote(r.OIfName))
	}
	if r.DAddr.IsValid() {
		ip := "ip"
		if r.DAddr.Addr().Is6() {
			ip = "ip6"
		}
		d := r.DAddr.String()
		if r.DAddr.IsSingleIP() {
			d = r.DAddr.Addr().String()
		}
		parts = append(parts, ip+" daddr "+d)
	}
	switch r.Verdict {
	case "jump":
		parts = append(parts, "jump "+r.Jump)
	case "redirect":
		parts = append(parts, "redirect to :"+strconv.Itoa(int(r.RedirectPort)))
	default:
		parts = append(parts, r.Verdict)
	}
	return strings.Join(parts, " ")
}

// NftRuleSet is nftables mode's rules for one address family: the base
// chains' jumps first, then the rules of RedirectChain and OutputChain.
type NftRuleSet struct {
	Family Family
	Rules  []NftRule
}

// Lines returns the rules as "CHAIN: RULE" lines, in order.
func (s NftRuleSet) Lines() []string {
	lines := make([]string, 0, len(s.Rules))
	for _, r := range s.Rules {
		lines = append(lines, r.Chain+": "+r.String())
	}
	return lines
}

// BuildNftRules computes nftables mode's rules for a family from the same
// configuration and with the same meaning as BuildRules: one rule per
// port range where iptables packs ranges into multiport matches.
func BuildNftRules(cfg Config, fam Family) (NftRuleSet, error) {
	if err := cfg.validate(); err != nil {
		return NftRuleSet{}, err
	}
	rule := func(chain, verdict string) NftRule {
		return NftRule{Chain: chain, Verdict: verdict, SkUID: -1, SkGID: -1}
	}
	portRule := func(chain string, p PortRange, verdict string) NftRule {
		r := rule(chain, verdict)
		r.TCP, r.DPort = true, &p
		return r
	}
	var rules []NftRule
	for _, b := range nftBaseChains {
		r := rule(b.Name, "jump")
		r.TCP, r.Jump = true, b.Jump
		rules = append(rules, r)
	}

	for _, p := range dedupe(append(slices.Clone(AlwaysIgnoredInboundPorts), cfg.InboundPortsToIgnore...)) {
		rules = append(rules, portRule(RedirectChain, p, "return"))
	}
	toIncoming := func(r NftRule) NftRule {
		r.Verdict, r.RedirectPort = "redirect", uint16(cfg.IncomingProxyPort)
		return r
	}
	if toRedirect := dedupe(cfg.PortsToRedirect); len(toRedirect) > 0 {
		for _, p := range toRedirect {
			rules = append(rules, toIncoming(portRule(RedirectChain, p, "")))
		}
	} else {
		r := rule(RedirectChain, "")
		r.TCP = true
		rules = append(rules, toIncoming(r))
	}

	uid := rule(OutputChain, "return")
	uid.SkUID = cfg.ProxyUID
	rules = append(rules, uid)
	if cfg.ProxyGID >= 0 {
		gid := rule(OutputChain, "return")
		gid.SkGID = cfg.ProxyGID
		rules = append(rules, gid)
	}
	lo := rule(OutputChain, "return")
	lo.OIfName = "lo"
	loopback := rule(OutputChain, "return")
	loopback.DAddr = netip.MustParsePrefix(fam.loopback())
	rules = append(rules, lo, loopback)
	for _, p := range dedupe(cfg.OutboundPortsToIgnore) {
		rules = append(rules, portRule(OutputChain, p, "return"))
	}
	seen := map[netip.Prefix]bool{}
	for _, subnet := range cfg.SubnetsToIgnore {
		subnet = subnet.Masked()
		if !fam.contains(subnet) || seen[subnet] {
			continue
		}
		seen[subnet] = true
		r := rule(OutputChain, "return")
		r.DAddr = subnet
		rules = append(rules, r)
	}
	out := rule(OutputChain, "redirect")
	out.TCP, out.RedirectPort = true, uint16(cfg.OutgoingProxyPort)
	rules = append(rules, out)
	return NftRuleSet{Family: fam, Rules: rules}, nil
}

// nftFamilyName is the nft family keyword of a Family.
func nftFamilyName(f Family) string {
	if f == IPv6 {
		return "ip6"
	}
	return "ip"
}

// script formats the rule set as an nft script, what simulation prints.
func (s NftRuleSet) script() string {
	var b strings.Builder
	fam := nftFamilyName(s.Family)
	// Adding then deleting makes the delete succeed on a first run.
	fmt.Fprintf(&b, "add table %s %s\ndelete table %s %s\nadd table %s %s\n", fam, NftTable, fam, NftTable, fam, NftTable)
	for _, c := range nftBaseChains {
		fmt.Fprintf(&b, "add chain %s %s %s { type nat hook %s priority -100 ; }\n", fam, NftTable, c.Name, c.Hook)
	}
	for _, c := range []string{RedirectChain, OutputChain} {
		fmt.Fprintf(&b, "add chain %s %s %s\n", fam, NftTable, c)
	}
	for _, r := range s.Rules {
		fmt.Fprintf(&b, "add rule %s %s %s %s\n", fam, NftTable, r.Chain, r)
	}
	return b.String()
}
