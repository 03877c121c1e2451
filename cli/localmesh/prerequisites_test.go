package localmesh

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestTools(t *testing.T) {
	tools := Tools()
	byCmd := map[string]Tool{}
	for _, tl := range tools {
		byCmd[tl.Command] = tl
	}
	for cmd, pkg := range map[string]string{"ip": "iproute2", "iptables": "iptables", "nsenter": "util-linux", "prometheus": "prometheus"} {
		if byCmd[cmd].Package != pkg {
			t.Errorf("%s: package %q, want %q", cmd, byCmd[cmd].Package, pkg)
		}
	}
	if byCmd["iptables"].Optional || !byCmd["prometheus"].Optional {
		t.Errorf("iptables must be required and prometheus optional: %+v", tools)
	}
}

func TestPrerequisites(t *testing.T) {
	all := func(string) (string, error) { return "/usr/bin/x", nil }
	none := func(string) (string, error) { return "", errors.New("not found") }
	exists := func(string) (os.FileInfo, error) { return nil, nil }
	routes := func(rs ...string) func(context.Context) ([]netip.Prefix, error) {
		return func(context.Context) ([]netip.Prefix, error) {
			var ps []netip.Prefix
			for _, r := range rs {
				ps = append(ps, netip.MustParsePrefix(r))
			}
			return ps, nil
		}
	}
	tests := []struct {
		name     string
		env      prereqEnv
		subnet   string
		want     []string // substrings of the required problems, in order
		optional int
	}{
		{name: "all there", env: prereqEnv{privileges: func() error { return nil }, lookPath: all, stat: exists, routes: routes("192.168.1.0/24")}},
		{
			name: "fresh machine, not root",
			env: prereqEnv{privileges: func() error { return ErrNotRoot }, lookPath: none,
				stat: func(p string) (os.FileInfo, error) {
					if strings.HasPrefix(p, "/proc") {
						return nil, nil
					}
					return nil, fs.ErrNotExist
				}, routes: routes()},
			want: []string{"needs root", "ip not found", "nsenter not found", "iptables not found", "ip6tables not found",
				"linkerd-proxy not found", "linkerd-init not found", "linkerd-controller not found"},
			optional: 1,
		},
		{name: "subnet taken", env: prereqEnv{privileges: func() error { return nil }, lookPath: all, stat: exists, routes: routes("10.0.0.0/8")},
			want: []string{"subnet 10.250.0.0/24 is in use"}},
		{name: "bad subnet", subnet: "fe80::/64", env: prereqEnv{privileges: func() error { return nil }, lookPath: all, stat: exists, routes: routes()},
			want: []string{`invalid subnet "fe80::/64"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(Config{StateDir: t.TempDir(), BinDir: "/opt/l5d", Subnet: tt.subnet})
			if err != nil {
				t.Fatal(err)
			}
			var required []string
			optional := 0
			for _, p := range m.prerequisites(context.Background(), tt.env) {
				if p.Fix == "" {
					t.Errorf("%q has no fix", p.What)
				}
				if p.Optional {
					optional++
					continue
				}
				required = append(required, p.String())
			}
			if len(required) != len(tt.want) || optional != tt.optional {
				t.Fatalf("problems %q and %d optional; want %d like %q and %d optional", required, optional, len(tt.want), tt.want, tt.optional)
			}
			for i, w := range tt.want {
				if !strings.Contains(required[i], w) {
					t.Errorf("problem %d %q does not say %q", i, required[i], w)
				}
			}

			err = m.checkPrerequisites(context.Background(), tt.env)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("checkPrerequisites = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrPrerequisites) {
				t.Fatalf("checkPrerequisites = %v, want ErrPrerequisites", err)
			}
			if notRoot := tt.name == "fresh machine, not root"; errors.Is(err, ErrNotRoot) != notRoot {
				t.Errorf("errors.Is(err, ErrNotRoot) = %v, want %v", !notRoot, notRoot)
			}
			if lines := strings.Count(err.Error(), "\n  - "); lines != len(tt.want) {
				t.Errorf("error lists %d problems, want %d:\n%v", lines, len(tt.want), err)
			}
		})
	}
}

func TestPrerequisiteErrorOneInstallLine(t *testing.T) {
	err := &PrerequisiteError{Problems: []Problem{
		{What: "ip not found", Fix: "apt-get install -y iproute2"},
		{What: "iptables not found", Fix: "apt-get install -y iptables"},
		{What: "ip6tables not found", Fix: "apt-get install -y iptables"},
	}}
	if !strings.Contains(err.Error(), "all packages at once: apt-get install -y iproute2 iptables\n") && !strings.HasSuffix(err.Error(), "all packages at once: apt-get install -y iproute2 iptables") {
		t.Errorf("no single install command in:\n%v", err)
	}
}

// TestCIInstallsPrerequisites: CI's setup installs from the same list.
func TestCIInstallsPrerequisites(t *testing.T) {
	b, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "cli/localmesh/prerequisites.txt") {
		t.Error(".ci/run does not install the packages of cli/localmesh/prerequisites.txt")
	}
}
