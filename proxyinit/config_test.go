package proxyinit

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestParsePortRanges(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []PortRange
		wantErr bool
	}{
		{name: "empty", in: nil, want: nil},
		{name: "empty strings", in: []string{"", " , "}, want: nil},
		{name: "single", in: []string{"80"}, want: []PortRange{{80, 80}}},
		{name: "comma list in one element", in: []string{"80, 443"}, want: []PortRange{{80, 80}, {443, 443}}},
		{name: "several elements", in: []string{"80", "1000-2000"}, want: []PortRange{{80, 80}, {1000, 2000}}},
		{name: "degenerate range", in: []string{"7-7"}, want: []PortRange{{7, 7}}},
		{name: "max port", in: []string{"65535"}, want: []PortRange{{65535, 65535}}},
		{name: "zero", in: []string{"0"}, wantErr: true},
		{name: "too big", in: []string{"65536"}, wantErr: true},
		{name: "negative", in: []string{"-5"}, wantErr: true},
		{name: "not a number", in: []string{"http"}, wantErr: true},
		{name: "reversed range", in: []string{"2000-1000"}, wantErr: true},
		{name: "open range", in: []string{"1000-"}, wantErr: true},
		{name: "bad element after good", in: []string{"80,x"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePortRanges(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParsePortRanges(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParsePortRanges(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestPortRangeFormats(t *testing.T) {
	tests := []struct {
		r             PortRange
		flag, ipt     string
		multiportSlot int
	}{
		{PortRange{80, 80}, "80", "80", 1},
		{PortRange{1000, 2000}, "1000-2000", "1000:2000", 2},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.flag {
			t.Errorf("%v.String() = %q, want %q", tt.r, got, tt.flag)
		}
		if got := tt.r.iptablesArg(); got != tt.ipt {
			t.Errorf("%v.iptablesArg() = %q, want %q", tt.r, got, tt.ipt)
		}
		if got := tt.r.multiportSlots(); got != tt.multiportSlot {
			t.Errorf("%v.multiportSlots() = %d, want %d", tt.r, got, tt.multiportSlot)
		}
	}
}

func TestParseSubnets(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{name: "empty", in: []string{""}, want: nil},
		{name: "v4 and v6", in: []string{"10.0.0.0/8,fd00::/8"}, want: []string{"10.0.0.0/8", "fd00::/8"}},
		{name: "host bits cleared", in: []string{"10.1.2.3/16"}, want: []string{"10.1.0.0/16"}},
		{name: "host route", in: []string{"192.168.1.1/32"}, want: []string{"192.168.1.1/32"}},
		{name: "missing length", in: []string{"10.0.0.0"}, wantErr: true},
		{name: "garbage", in: []string{"nope/8"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSubnets(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseSubnets(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			var gotS []string
			for _, p := range got {
				gotS = append(gotS, p.String())
			}
			if !reflect.DeepEqual(gotS, tt.want) {
				t.Errorf("ParseSubnets(%q) = %v, want %v", tt.in, gotS, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr bool
	}{
		{name: "defaults", mutate: func(*Config) {}},
		{name: "incoming port zero", mutate: func(c *Config) { c.IncomingProxyPort = 0 }, wantErr: true},
		{name: "outgoing port too big", mutate: func(c *Config) { c.OutgoingProxyPort = 70000 }, wantErr: true},
		{name: "negative uid", mutate: func(c *Config) { c.ProxyUID = -1 }, wantErr: true},
		{name: "uid zero allowed", mutate: func(c *Config) { c.ProxyUID = 0 }},
		{name: "negative close wait", mutate: func(c *Config) { c.TimeoutCloseWaitSecs = -1 }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			if err := cfg.validate(); (err != nil) != tt.wantErr {
				t.Errorf("validate() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// prefixes is a test helper parsing CIDRs.
func prefixes(t *testing.T, s ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}
