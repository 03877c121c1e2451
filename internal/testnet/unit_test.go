package testnet

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestRequireProblem(t *testing.T) {
	found := func(string) (string, error) { return "/usr/bin/x", nil }
	missingIptables := func(name string) (string, error) {
		if name == "iptables" {
			return "", errors.New("not found")
		}
		return "/usr/sbin/" + name, nil
	}
	ok := func() error { return nil }
	denied := func() error { return errors.New("operation not permitted") }

	tests := []struct {
		name     string
		goos     string
		euid     int
		binaries []string
		lookPath func(string) (string, error)
		probe    func() error
		want     string // substring; "" means no problem
	}{
		{"all good", "linux", 0, []string{"ip", "iptables"}, found, ok, ""},
		{"not linux", "darwin", 0, nil, found, ok, "need Linux"},
		{"not root", "linux", 1000, nil, found, ok, "needs root"},
		{"missing binary", "linux", 0, []string{"ip", "iptables"}, missingIptables, ok, "missing required binaries in PATH: iptables"},
		{"no netns permission", "linux", 0, []string{"ip"}, found, denied, "cannot create network namespaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := requireProblem(tt.goos, tt.euid, tt.binaries, tt.lookPath, tt.probe)
			if tt.want == "" {
				if got != "" {
					t.Fatalf("requireProblem() = %q, want no problem", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("requireProblem() = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

func TestPickOctet(t *testing.T) {
	all := make(map[int]bool)
	for o := 1; o <= 254; o++ {
		all[o] = true
	}
	allBut := func(free int) map[int]bool {
		m := make(map[int]bool)
		for o := range all {
			if o != free {
				m[o] = true
			}
		}
		return m
	}
	first := func(int) int { return 0 }
	last := func(n int) int { return n - 1 }

	tests := []struct {
		name    string
		used    map[int]bool
		intn    func(int) int
		want    int
		wantErr bool
	}{
		{"none used, first", nil, first, 1, false},
		{"none used, last", nil, last, 254, false},
		{"skips used", map[int]bool{1: true, 2: true}, first, 3, false},
		{"only one free", allBut(77), last, 77, false},
		{"all used", all, first, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickOctet(tt.used, tt.intn)
			if (err != nil) != tt.wantErr {
				t.Fatalf("pickOctet() error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("pickOctet() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestHostAddr(t *testing.T) {
	subnet := netip.MustParsePrefix("10.248.9.0/24")
	tests := []struct {
		ix     int
		want   string
		wantOK bool
	}{
		{0, "10.248.9.2", true},
		{1, "10.248.9.3", true},
		{252, "10.248.9.254", true},
		{253, "", false},
		{-1, "", false},
	}
	for _, tt := range tests {
		got, ok := hostAddr(subnet, tt.ix)
		if ok != tt.wantOK {
			t.Errorf("hostAddr(%d) ok = %v, want %v", tt.ix, ok, tt.wantOK)
			continue
		}
		if ok && got.String() != tt.want {
			t.Errorf("hostAddr(%d) = %s, want %s", tt.ix, got, tt.want)
		}
	}
}

func TestNetworkID(t *testing.T) {
	tests := []struct {
		ns     string
		want   string
		wantOK bool
	}{
		{"l5dt-a1b2c3-switch", "a1b2c3", true},
		{"l5dt-a1b2c3-my-pod", "a1b2c3", true},
		{"l5dt-a1b2c3", "", false},
		{"l5dt--switch", "", false},
		{"l5dt-a1b2c3-", "", false},
		{"cni-1234-5678", "", false},
	}
	for _, tt := range tests {
		got, ok := networkID(tt.ns)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("networkID(%q) = %q, %v; want %q, %v", tt.ns, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestPodNameRE(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"client", true},
		{"server-1", true},
		{strings.Repeat("a", 40), true},
		{strings.Repeat("a", 41), false},
		{"", false},
		{"-a", false},
		{"a-", false},
		{"A", false},
		{"a_b", false},
		{"a.b", false},
	}
	for _, tt := range tests {
		if got := podNameRE.MatchString(tt.name); got != tt.ok {
			t.Errorf("podNameRE.MatchString(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

func TestOutputBufferKeepsTail(t *testing.T) {
	var b outputBuffer
	chunk := strings.Repeat("x", 1<<20)
	for range 10 {
		b.Write([]byte(chunk))
	}
	b.Write([]byte("END"))
	got := b.String()
	if !strings.HasPrefix(got, "[... earlier output dropped ...]\n") {
		t.Fatalf("truncated output lacks marker: %q", got[:40])
	}
	if !strings.HasSuffix(got, "xEND") {
		t.Fatalf("output lost its tail: %q", got[len(got)-10:])
	}
	if body := strings.TrimPrefix(got, "[... earlier output dropped ...]\n"); len(body) != maxOutput {
		t.Fatalf("kept %d bytes, want %d", len(body), maxOutput)
	}

	var small outputBuffer
	small.Write([]byte("hello "))
	small.Write([]byte("world"))
	if got := small.String(); got != "hello world" {
		t.Fatalf("String() = %q, want %q", got, "hello world")
	}
}
