package proxyinit

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestBuildNftRules(t *testing.T) {
	full := DefaultConfig()
	full.ProxyGID = 2103
	full.InboundPortsToIgnore = []PortRange{{8000, 8005}, {9000, 9000}, {4191, 4191}}
	full.OutboundPortsToIgnore = []PortRange{{443, 443}, {8443, 8443}}
	full.SubnetsToIgnore = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00:10::/64"), netip.MustParsePrefix("10.96.0.0/12")}
	only := DefaultConfig()
	only.PortsToRedirect = []PortRange{{8080, 8080}, {9000, 9100}}
	only.IncomingProxyPort, only.OutgoingProxyPort, only.ProxyUID = 5143, 5140, 0

	tests := []struct {
		name string
		cfg  Config
		fam  Family
		want []string // written by hand, in nft's syntax
	}{
		{"defaults", DefaultConfig(), IPv4, []string{
			"PREROUTING: meta l4proto tcp jump PROXY_INIT_REDIRECT",
			"OUTPUT: meta l4proto tcp jump PROXY_INIT_OUTPUT",
			"PROXY_INIT_REDIRECT: tcp dport 4190 return",
			"PROXY_INIT_REDIRECT: tcp dport 4191 return",
			"PROXY_INIT_REDIRECT: meta l4proto tcp redirect to :4143",
			"PROXY_INIT_OUTPUT: meta skuid 2102 return",
			`PROXY_INIT_OUTPUT: oifname "lo" return`,
			"PROXY_INIT_OUTPUT: ip daddr 127.0.0.0/8 return",
			"PROXY_INIT_OUTPUT: meta l4proto tcp redirect to :4140",
		}},
		{"everything, IPv4", full, IPv4, []string{
			"PREROUTING: meta l4proto tcp jump PROXY_INIT_REDIRECT",
			"OUTPUT: meta l4proto tcp jump PROXY_INIT_OUTPUT",
			"PROXY_INIT_REDIRECT: tcp dport 4190 return",
			"PROXY_INIT_REDIRECT: tcp dport 4191 return",
			"PROXY_INIT_REDIRECT: tcp dport 8000-8005 return",
			"PROXY_INIT_REDIRECT: tcp dport 9000 return",
			"PROXY_INIT_REDIRECT: meta l4proto tcp redirect to :4143",
			"PROXY_INIT_OUTPUT: meta skuid 2102 return",
			"PROXY_INIT_OUTPUT: meta skgid 2103 return",
			`PROXY_INIT_OUTPUT: oifname "lo" return`,
			"PROXY_INIT_OUTPUT: ip daddr 127.0.0.0/8 return",
			"PROXY_INIT_OUTPUT: tcp dport 443 return",
			"PROXY_INIT_OUTPUT: tcp dport 8443 return",
			"PROXY_INIT_OUTPUT: ip daddr 10.96.0.0/12 return",
			"PROXY_INIT_OUTPUT: meta l4proto tcp redirect to :4140",
		}},
		{"everything, IPv6", full, IPv6, []string{
			"PREROUTING: meta l4proto tcp jump PROXY_INIT_REDIRECT",
			"OUTPUT: meta l4proto tcp jump PROXY_INIT_OUTPUT",
			"PROXY_INIT_REDIRECT: tcp dport 4190 return",
			"PROXY_INIT_REDIRECT: tcp dport 4191 return",
			"PROXY_INIT_REDIRECT: tcp dport 8000-8005 return",
			"PROXY_INIT_REDIRECT: tcp dport 9000 return",
			"PROXY_INIT_REDIRECT: meta l4proto tcp redirect to :4143",
			"PROXY_INIT_OUTPUT: meta skuid 2102 return",
			"PROXY_INIT_OUTPUT: meta skgid 2103 return",
			`PROXY_INIT_OUTPUT: oifname "lo" return`,
			"PROXY_INIT_OUTPUT: ip6 daddr ::1 return",
			"PROXY_INIT_OUTPUT: tcp dport 443 return",
			"PROXY_INIT_OUTPUT: tcp dport 8443 return",
			"PROXY_INIT_OUTPUT: ip6 daddr fd00:10::/64 return",
			"PROXY_INIT_OUTPUT: meta l4proto tcp redirect to :4140",
		}},
		{"only some ports redirected", only, IPv4, []string{
			"PREROUTING: meta l4proto tcp jump PROXY_INIT_REDIRECT",
			"OUTPUT: meta l4proto tcp jump PROXY_INIT_OUTPUT",
			"PROXY_INIT_REDIRECT: tcp dport 4190 return",
			"PROXY_INIT_REDIRECT: tcp dport 4191 return",
			"PROXY_INIT_REDIRECT: tcp dport 8080 redirect to :5143",
			"PROXY_INIT_REDIRECT: tcp dport 9000-9100 redirect to :5143",
			"PROXY_INIT_OUTPUT: meta skuid 0 return",
			`PROXY_INIT_OUTPUT: oifname "lo" return`,
			"PROXY_INIT_OUTPUT: ip daddr 127.0.0.0/8 return",
			"PROXY_INIT_OUTPUT: meta l4proto tcp redirect to :5140",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs, err := BuildNftRules(tt.cfg, tt.fam)
			if err != nil {
				t.Fatal(err)
			}
			if got := rs.Lines(); !slices.Equal(got, tt.want) {
				t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}

	bad := DefaultConfig()
	bad.FirewallMode = "pf"
	if _, err := BuildNftRules(bad, IPv4); err == nil || !strings.Contains(err.Error(), `firewall mode "pf"`) {
		t.Errorf("bad mode: %v", err)
	}
}

// TestNftRulesMatchIPTables: nftables mode says what iptables mode says,
// rule for rule once multiport lists are split into one rule per range.
func TestNftRulesMatchIPTables(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ProxyGID = 7
	cfg.InboundPortsToIgnore = []PortRange{{8000, 8005}, {22, 22}}
	cfg.OutboundPortsToIgnore = []PortRange{{443, 443}}
	cfg.SubnetsToIgnore = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	ipt, err := BuildRules(cfg, IPv4)
	if err != nil {
		t.Fatal(err)
	}
	nft, err := BuildNftRules(cfg, IPv4)
	if err != nil {
		t.Fatal(err)
	}
	count := func(chain string) (iptRules, nftRules int) {
		for _, c := range ipt.Chains {
			if c.Name != chain {
				continue
			}
			for _, r := range c.Rules {
				n := 1
				if i := slices.Index(r, "--dports"); i >= 0 {
					n = strings.Count(r[i+1], ",") + 1
				}
				iptRules += n
			}
		}
		for _, r := range nft.Rules {
			if r.Chain == chain {
				nftRules++
			}
		}
		return iptRules, nftRules
	}
	for _, chain := range []string{RedirectChain, OutputChain} {
		if i, n := count(chain); i != n {
			t.Errorf("%s: iptables has %d rules (ranges counted one by one), nftables %d", chain, i, n)
		}
	}
}

func TestFirewallMode(t *testing.T) {
	tests := []struct {
		name  string
		mode  string
		bin   string
		found []string
		want  string
	}{
		{name: "auto, iptables-nft found", found: []string{"iptables-nft"}, want: ModeIPTables},
		{name: "auto, only iptables found", mode: ModeAuto, found: []string{"iptables"}, want: ModeIPTables},
		{name: "auto, no iptables", want: ModeNftables},
		{name: "auto, binary configured", bin: "/opt/iptables", want: ModeIPTables},
		{name: "forced nftables", mode: ModeNftables, found: []string{"iptables-nft"}, want: ModeNftables},
		{name: "forced iptables", mode: ModeIPTables, want: ModeIPTables},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, _ := newTestRunner(&fakeExec{}, tt.found...)
			cfg := DefaultConfig()
			cfg.FirewallMode, cfg.FirewallBinPath = tt.mode, tt.bin
			if got := r.mode(cfg); got != tt.want {
				t.Errorf("mode = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRunNftables(t *testing.T) {
	f := &fakeExec{}
	r, logs := newTestRunner(f) // no iptables binary anywhere
	var applied []NftRuleSet
	r.applyNft = func(sets []NftRuleSet) ([]int, error) {
		applied = sets
		var n []int
		for _, s := range sets {
			n = append(n, len(s.Rules))
		}
		return n, nil
	}
	cfg := DefaultConfig()
	cfg.IPv6 = true
	if err := r.run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 0 {
		t.Errorf("nftables mode ran commands: %q", f.calls)
	}
	if len(applied) != 2 || applied[0].Family != IPv4 || applied[1].Family != IPv6 {
		t.Fatalf("applied %+v, want IPv4 and IPv6 rule sets", applied)
	}
	if !strings.Contains(logs.String(), "PROXY_INIT_OUTPUT: meta l4proto tcp redirect to :4140") {
		t.Errorf("the rules were not logged:\n%s", logs)
	}

	// A table that reads back short is an error.
	r.applyNft = func([]NftRuleSet) ([]int, error) { return []int{3}, nil }
	cfg.IPv6 = false
	if err := r.run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "holds 3 rules, want 9") {
		t.Errorf("short table: %v", err)
	}
	r.applyNft = func([]NftRuleSet) ([]int, error) { return nil, errors.New("netlink: operation not permitted") }
	if err := r.run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "operation not permitted") {
		t.Errorf("netlink failure: %v", err)
	}
}

func TestSimulateNftables(t *testing.T) {
	r, _ := newTestRunner(&fakeExec{})
	var out bytes.Buffer
	r.out = &out
	r.applyNft = func([]NftRuleSet) ([]int, error) { t.Error("simulation applied rules"); return nil, nil }
	cfg := DefaultConfig()
	cfg.Simulate = true
	cfg.FirewallMode = ModeNftables
	if err := r.run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"add table ip linkerd_proxy_init\ndelete table ip linkerd_proxy_init\nadd table ip linkerd_proxy_init\n",
		"add chain ip linkerd_proxy_init PREROUTING { type nat hook prerouting priority -100 ; }\n",
		"add rule ip linkerd_proxy_init PROXY_INIT_REDIRECT meta l4proto tcp redirect to :4143\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("simulation does not print %q:\n%s", want, out.String())
		}
	}
}
