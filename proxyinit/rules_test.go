package proxyinit

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestBuildRules(t *testing.T) {
	jumps := []string{
		"-A PREROUTING -p tcp -j PROXY_INIT_REDIRECT",
		"-A OUTPUT -p tcp -j PROXY_INIT_OUTPUT",
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		fam    Family
		want   []string // SaveLines without the two jumps
	}{
		{
			name: "defaults",
			fam:  IPv4,
			want: []string{
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -j RETURN",
				"-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
				"-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
				"-A PROXY_INIT_OUTPUT -o lo -j RETURN",
				"-A PROXY_INIT_OUTPUT -d 127.0.0.0/8 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
			},
		},
		{
			name: "defaults ipv6 uses ::1",
			fam:  IPv6,
			want: []string{
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -j RETURN",
				"-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
				"-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
				"-A PROXY_INIT_OUTPUT -o lo -j RETURN",
				"-A PROXY_INIT_OUTPUT -d ::1/128 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
			},
		},
		{
			name: "custom ports uid gid",
			fam:  IPv4,
			mutate: func(c *Config) {
				c.IncomingProxyPort, c.OutgoingProxyPort = 5143, 5140
				c.ProxyUID, c.ProxyGID = 1000, 0
			},
			want: []string{
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -j RETURN",
				"-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 5143",
				"-A PROXY_INIT_OUTPUT -m owner --uid-owner 1000 -j RETURN",
				"-A PROXY_INIT_OUTPUT -m owner --gid-owner 0 -j RETURN",
				"-A PROXY_INIT_OUTPUT -o lo -j RETURN",
				"-A PROXY_INIT_OUTPUT -d 127.0.0.0/8 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 5140",
			},
		},
		{
			name: "ignored ports deduplicated, ranges, outbound ports and subnets",
			fam:  IPv4,
			mutate: func(c *Config) {
				c.InboundPortsToIgnore = []PortRange{{4191, 4191}, {4567, 4568}, {25, 25}}
				c.OutboundPortsToIgnore = []PortRange{{443, 443}, {443, 443}, {3306, 3306}}
				c.SubnetsToIgnore = prefixes(t, "10.0.0.0/8", "fd00::/8", "192.168.0.0/16", "10.0.0.0/8")
			},
			want: []string{
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191,4567:4568,25 -j RETURN",
				"-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
				"-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
				"-A PROXY_INIT_OUTPUT -o lo -j RETURN",
				"-A PROXY_INIT_OUTPUT -d 127.0.0.0/8 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -m multiport --dports 443,3306 -j RETURN",
				"-A PROXY_INIT_OUTPUT -d 10.0.0.0/8 -j RETURN",
				"-A PROXY_INIT_OUTPUT -d 192.168.0.0/16 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
			},
		},
		{
			name: "ipv6 keeps only ipv6 subnets",
			fam:  IPv6,
			mutate: func(c *Config) {
				c.SubnetsToIgnore = prefixes(t, "10.0.0.0/8", "fd00::/8")
			},
			want: []string{
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -j RETURN",
				"-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
				"-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
				"-A PROXY_INIT_OUTPUT -o lo -j RETURN",
				"-A PROXY_INIT_OUTPUT -d ::1/128 -j RETURN",
				"-A PROXY_INIT_OUTPUT -d fd00::/8 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
			},
		},
		{
			name: "ports to redirect",
			fam:  IPv4,
			mutate: func(c *Config) {
				c.PortsToRedirect = []PortRange{{80, 80}, {8080, 8090}}
			},
			want: []string{
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -j RETURN",
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 80,8080:8090 -j REDIRECT --to-ports 4143",
				"-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
				"-A PROXY_INIT_OUTPUT -o lo -j RETURN",
				"-A PROXY_INIT_OUTPUT -d 127.0.0.0/8 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
			},
		},
		{
			name: "more than 15 inbound ports split into groups",
			fam:  IPv4,
			mutate: func(c *Config) {
				for p := uint16(1); p <= 14; p++ {
					c.InboundPortsToIgnore = append(c.InboundPortsToIgnore, PortRange{p, p})
				}
			},
			want: []string{
				// 4190, 4191 and 1..13 fill 15 slots; 14 starts a new group.
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191,1,2,3,4,5,6,7,8,9,10,11,12,13 -j RETURN",
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 14 -j RETURN",
				"-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
				"-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
				"-A PROXY_INIT_OUTPUT -o lo -j RETURN",
				"-A PROXY_INIT_OUTPUT -d 127.0.0.0/8 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
			},
		},
		{
			name: "ranges take two multiport slots",
			fam:  IPv4,
			mutate: func(c *Config) {
				// 7 ranges = 14 slots; the 8th range does not fit.
				for i := uint16(0); i < 8; i++ {
					c.OutboundPortsToIgnore = append(c.OutboundPortsToIgnore, PortRange{1000 + 10*i, 1005 + 10*i})
				}
			},
			want: []string{
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -j RETURN",
				"-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
				"-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
				"-A PROXY_INIT_OUTPUT -o lo -j RETURN",
				"-A PROXY_INIT_OUTPUT -d 127.0.0.0/8 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -m multiport --dports 1000:1005,1010:1015,1020:1025,1030:1035,1040:1045,1050:1055,1060:1065 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -m multiport --dports 1070:1075 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.mutate != nil {
				tt.mutate(&cfg)
			}
			rs, err := BuildRules(cfg, tt.fam)
			if err != nil {
				t.Fatalf("BuildRules: %v", err)
			}
			if rs.Family != tt.fam {
				t.Errorf("Family = %v, want %v", rs.Family, tt.fam)
			}
			// SaveLines lists chain rules first, then the jumps; compare
			// chains in the order the test lists them (REDIRECT, OUTPUT).
			want := append(append([]string{}, tt.want...), jumps...)
			if got := rs.SaveLines(); !reflect.DeepEqual(got, want) {
				t.Errorf("rules mismatch\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestBuildRulesInvalid(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IncomingProxyPort = 0
	if _, err := BuildRules(cfg, IPv4); err == nil {
		t.Fatal("BuildRules accepted incoming port 0")
	}
}

// The multiport limit holds for any mix of ports and ranges.
func TestMultiportGroupsRespectLimit(t *testing.T) {
	for n := 0; n <= 40; n++ {
		var ports []PortRange
		for i := 0; i < n; i++ {
			p := uint16(100 + 10*i)
			if i%3 == 0 {
				ports = append(ports, PortRange{p, p + 5})
			} else {
				ports = append(ports, PortRange{p, p})
			}
		}
		groups := multiportGroups(ports)
		var items []string
		for _, g := range groups {
			slots := 0
			for item := range strings.SplitSeq(g, ",") {
				items = append(items, item)
				slots++
				if strings.Contains(item, ":") {
					slots++
				}
			}
			if slots > maxMultiportSlots {
				t.Errorf("n=%d: group %q uses %d slots", n, g, slots)
			}
		}
		if len(items) != n {
			t.Errorf("n=%d: groups hold %d ports: %v", n, len(items), groups)
		}
		for i, p := range ports {
			if i < len(items) && items[i] != p.iptablesArg() {
				t.Errorf("n=%d: item %d = %q, want %q", n, i, items[i], p.iptablesArg())
			}
		}
	}
}

func TestCommands(t *testing.T) {
	rs, err := BuildRules(DefaultConfig(), IPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, useWait := range []bool{false, true} {
		t.Run(fmt.Sprintf("wait=%v", useWait), func(t *testing.T) {
			prefix := "-t nat "
			if useWait {
				prefix = "-w -t nat "
			}
			var got []string
			for _, c := range rs.Commands(useWait) {
				s := strings.Join(c.Args, " ")
				if c.OrElse != nil {
					s += " || " + strings.Join(c.OrElse, " ")
				}
				got = append(got, s)
			}
			want := []string{
				prefix + "-N PROXY_INIT_REDIRECT || " + prefix + "-F PROXY_INIT_REDIRECT",
				prefix + "-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -j RETURN",
				prefix + "-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
				prefix + "-N PROXY_INIT_OUTPUT || " + prefix + "-F PROXY_INIT_OUTPUT",
				prefix + "-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
				prefix + "-A PROXY_INIT_OUTPUT -o lo -j RETURN",
				prefix + "-A PROXY_INIT_OUTPUT -d 127.0.0.0/8 -j RETURN",
				prefix + "-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
				prefix + "-C PREROUTING -p tcp -j PROXY_INIT_REDIRECT || " + prefix + "-A PREROUTING -p tcp -j PROXY_INIT_REDIRECT",
				prefix + "-C OUTPUT -p tcp -j PROXY_INIT_OUTPUT || " + prefix + "-A OUTPUT -p tcp -j PROXY_INIT_OUTPUT",
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("commands mismatch\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
