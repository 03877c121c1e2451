package localmesh

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"slices"
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
	// Without iptables, linkerd-init writes its rules with nftables.
	if byCmd["ip"].Optional || !byCmd["iptables"].Optional || !byCmd["prometheus"].Optional {
		t.Errorf("ip must be required, iptables and prometheus optional: %+v", tools)
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
			want: []string{"needs root", "ip not found", "nsenter not found",
				"linkerd-proxy not found", "linkerd-init not found", "linkerd-controller not found"},
			optional: 3,
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

// fakeMachine is a Debian machine whose PATH holds the commands of its
// installed packages; apt-get install adds packages.
type fakeMachine struct {
	root, apt, debian, lists bool
	installed                map[string]bool // Debian packages
	runs                     []string
	runErr                   error
}

func (f *fakeMachine) env() prereqEnv {
	return prereqEnv{
		privileges: func() error {
			if f.root {
				return nil
			}
			return ErrNotRoot
		},
		lookPath: func(cmd string) (string, error) {
			if cmd == "apt-get" {
				if f.apt {
					return "/usr/bin/apt-get", nil
				}
				return "", errors.New("not found")
			}
			for _, t := range Tools() {
				if t.Command == cmd && f.installed[t.Package] {
					return "/usr/bin/" + cmd, nil
				}
			}
			return "", errors.New("not found")
		},
		stat: func(p string) (os.FileInfo, error) {
			if p == "/etc/debian_version" && !f.debian {
				return nil, fs.ErrNotExist
			}
			return nil, nil
		},
		routes: func(context.Context) ([]netip.Prefix, error) { return nil, nil },
		glob: func(string) ([]string, error) {
			if f.lists {
				return []string{aptListsDir + "/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"}, nil
			}
			return nil, nil
		},
		run: func(_ context.Context, _ io.Writer, name string, args ...string) error {
			f.runs = append(f.runs, name+" "+strings.Join(args, " "))
			if f.runErr != nil {
				return f.runErr
			}
			if name == "apt-get" && args[0] == "install" {
				for _, a := range args[1:] {
					if !strings.HasPrefix(a, "-") {
						f.installed[a] = true
					}
				}
			}
			return nil
		},
	}
}

func TestInstallMissing(t *testing.T) {
	allPkgs := map[string]bool{"iproute2": true, "util-linux": true, "iptables": true, "prometheus": true}
	tests := []struct {
		name     string
		machine  fakeMachine
		refuse   bool     // --install-missing=false
		wantRuns []string // commands run, in order
		wantErr  []string // substrings of the error; none: nil
		wantLog  string
	}{
		{name: "nothing missing", machine: fakeMachine{root: true, apt: true, debian: true, lists: true, installed: allPkgs}},
		{
			name:     "some missing, apt",
			machine:  fakeMachine{root: true, apt: true, debian: true, lists: true, installed: map[string]bool{"util-linux": true}},
			wantRuns: []string{"apt-get install -y -q --no-install-recommends iproute2 iptables prometheus"},
			wantLog:  "installing the missing packages (--install-missing=false to refuse): apt-get install -y -q --no-install-recommends iproute2 iptables prometheus",
		},
		{
			name:     "fresh image without package lists",
			machine:  fakeMachine{root: true, apt: true, debian: true, installed: map[string]bool{"util-linux": true, "iproute2": true, "prometheus": true}},
			wantRuns: []string{"apt-get update -q", "apt-get install -y -q --no-install-recommends iptables"},
		},
		{
			name:    "no apt",
			machine: fakeMachine{root: true, debian: true, lists: true, installed: map[string]bool{"util-linux": true, "iptables": true, "prometheus": true}},
			wantErr: []string{"ip not found", "fix: apt-get install -y iproute2"},
		},
		{
			name:    "no apt, only optional tools missing",
			machine: fakeMachine{root: true, debian: true, lists: true, installed: map[string]bool{"util-linux": true, "iproute2": true}},
			wantLog: "warning: iptables not found in PATH",
		},
		{
			name:    "not Debian",
			machine: fakeMachine{root: true, apt: true, lists: true, installed: map[string]bool{"util-linux": true, "iptables": true, "prometheus": true}},
			wantErr: []string{"ip not found", "fix: apt-get install -y iproute2"},
		},
		{
			name:    "not root",
			machine: fakeMachine{apt: true, debian: true, lists: true, installed: map[string]bool{"util-linux": true, "iptables": true, "prometheus": true}},
			wantErr: []string{"needs root", "ip not found"},
		},
		{
			name:    "refused",
			refuse:  true,
			machine: fakeMachine{root: true, apt: true, debian: true, lists: true, installed: map[string]bool{"util-linux": true, "iptables": true, "prometheus": true}},
			wantErr: []string{"ip not found", "fix: apt-get install -y iproute2"},
		},
		{
			name:     "apt-get fails, only optional tools missing",
			machine:  fakeMachine{root: true, apt: true, debian: true, lists: true, runErr: errors.New("exit status 100"), installed: map[string]bool{"util-linux": true, "iproute2": true}},
			wantRuns: []string{"apt-get install -y -q --no-install-recommends iptables prometheus"},
			wantLog:  "warning: installing the missing packages: exit status 100",
		},
		{
			name:     "apt-get fails",
			machine:  fakeMachine{root: true, apt: true, debian: true, lists: true, runErr: errors.New("exit status 100"), installed: map[string]bool{"util-linux": true}},
			wantRuns: []string{"apt-get install -y -q --no-install-recommends iproute2 iptables prometheus"},
			wantErr:  []string{"exit status 100", "install them yourself: apt-get install -y iproute2 iptables prometheus"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			binDir := t.TempDir()
			var log strings.Builder
			m, err := New(Config{StateDir: t.TempDir(), BinDir: binDir, Log: &log, InstallMissing: !tt.refuse})
			if err != nil {
				t.Fatal(err)
			}
			err = m.checkPrerequisites(context.Background(), tt.machine.env())
			if !slices.Equal(tt.machine.runs, tt.wantRuns) {
				t.Errorf("ran %q, want %q", tt.machine.runs, tt.wantRuns)
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("checkPrerequisites = %v, want nil", err)
			}
			if len(tt.wantErr) > 0 && err == nil {
				t.Fatalf("checkPrerequisites = nil, want an error saying %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if !strings.Contains(log.String(), tt.wantLog) {
				t.Errorf("log does not say %q:\n%s", tt.wantLog, log.String())
			}
		})
	}
}
