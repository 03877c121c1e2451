package proxyinit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeExec records command lines and fails those for which fail returns an error.
type fakeExec struct {
	calls []string
	fail  func(line string) error
}

func (f *fakeExec) exec(_ context.Context, name string, args ...string) (string, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	f.calls = append(f.calls, line)
	if f.fail != nil {
		if err := f.fail(line); err != nil {
			return "", err
		}
	}
	if strings.Contains(name, "-save") {
		return "*nat\nCOMMIT\n", nil
	}
	return "", nil
}

func newTestRunner(f *fakeExec, found ...string) (*runner, *bytes.Buffer) {
	var logs bytes.Buffer
	return &runner{
		exec: f.exec,
		lookPath: func(name string) (string, error) {
			for _, n := range found {
				if n == name {
					return "/usr/sbin/" + name, nil
				}
			}
			return "", errors.New("not found")
		},
		sysctlDir: "/nonexistent",
		log:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		out:       io.Discard,
	}, &logs
}

func TestRunFirstTimeAndAgain(t *testing.T) {
	// First run: chains do not exist yet, so -N succeeds and -C fails.
	first := &fakeExec{fail: func(line string) error {
		if strings.Contains(line, " -C ") {
			return errors.New("rule does not exist")
		}
		return nil
	}}
	r, logs := newTestRunner(first, "iptables-nft")
	if err := r.run(context.Background(), DefaultConfig()); err != nil {
		t.Fatalf("first run: %v", err)
	}
	assertCalls(t, first.calls, []string{
		"iptables-nft-save -t nat",
		"iptables-nft -t nat -N PROXY_INIT_REDIRECT",
		"iptables-nft -t nat -A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -j RETURN",
		"iptables-nft -t nat -A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
		"iptables-nft -t nat -N PROXY_INIT_OUTPUT",
		"iptables-nft -t nat -A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
		"iptables-nft -t nat -A PROXY_INIT_OUTPUT -o lo -j RETURN",
		"iptables-nft -t nat -A PROXY_INIT_OUTPUT -d 127.0.0.0/8 -j RETURN",
		"iptables-nft -t nat -A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
		"iptables-nft -t nat -C PREROUTING -p tcp -j PROXY_INIT_REDIRECT",
		"iptables-nft -t nat -A PREROUTING -p tcp -j PROXY_INIT_REDIRECT",
		"iptables-nft -t nat -C OUTPUT -p tcp -j PROXY_INIT_OUTPUT",
		"iptables-nft -t nat -A OUTPUT -p tcp -j PROXY_INIT_OUTPUT",
		"iptables-nft-save -t nat",
	})
	if !strings.Contains(logs.String(), `msg="nat table after configuration"`) || !strings.Contains(logs.String(), "level=INFO") {
		t.Errorf("final nat table not logged at info:\n%s", logs.String())
	}

	// Second run: chains exist, so -N fails and they are flushed; jumps exist.
	again := &fakeExec{fail: func(line string) error {
		if strings.Contains(line, " -N ") {
			return errors.New("chain already exists")
		}
		return nil
	}}
	r, _ = newTestRunner(again, "iptables-nft")
	if err := r.run(context.Background(), DefaultConfig()); err != nil {
		t.Fatalf("second run: %v", err)
	}
	assertCalls(t, again.calls, []string{
		"iptables-nft-save -t nat",
		"iptables-nft -t nat -N PROXY_INIT_REDIRECT",
		"iptables-nft -t nat -F PROXY_INIT_REDIRECT",
		"iptables-nft -t nat -A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -j RETURN",
		"iptables-nft -t nat -A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
		"iptables-nft -t nat -N PROXY_INIT_OUTPUT",
		"iptables-nft -t nat -F PROXY_INIT_OUTPUT",
		"iptables-nft -t nat -A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
		"iptables-nft -t nat -A PROXY_INIT_OUTPUT -o lo -j RETURN",
		"iptables-nft -t nat -A PROXY_INIT_OUTPUT -d 127.0.0.0/8 -j RETURN",
		"iptables-nft -t nat -A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
		"iptables-nft -t nat -C PREROUTING -p tcp -j PROXY_INIT_REDIRECT",
		"iptables-nft -t nat -C OUTPUT -p tcp -j PROXY_INIT_OUTPUT",
		"iptables-nft-save -t nat",
	})
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name     string
		failing  string // substring of the command lines that fail
		wantErrs []string
	}{
		{
			name:     "append fails",
			failing:  "-A PROXY_INIT_OUTPUT -o lo",
			wantErrs: []string{"configuring IPv4 rules", "boom: -A PROXY_INIT_OUTPUT -o lo"},
		},
		{
			name:     "create and flush both fail",
			failing:  "PROXY_INIT_REDIRECT",
			wantErrs: []string{"boom: -F PROXY_INIT_REDIRECT", "boom: -N PROXY_INIT_REDIRECT"},
		},
		{
			name:     "save fails after configuration",
			failing:  "-save",
			wantErrs: []string{"reading back IPv4 rules"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeExec{fail: func(line string) error {
				if strings.Contains(line, tt.failing) {
					_, args, _ := strings.Cut(line, " -t nat ")
					return errors.New("boom: " + args)
				}
				return nil
			}}
			r, _ := newTestRunner(f, "iptables-nft")
			err := r.run(context.Background(), DefaultConfig())
			if err == nil {
				t.Fatal("run succeeded, want error")
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestPlanBinaries(t *testing.T) {
	tests := []struct {
		name          string
		found         []string
		bin, saveBin  string
		ipv6          bool
		want          []string // bin, saveBin per family
		wantErrSubstr string
	}{
		{name: "prefers nft", found: []string{"iptables", "iptables-legacy", "iptables-nft"}, want: []string{"iptables-nft", "iptables-nft-save"}},
		{name: "then legacy", found: []string{"iptables", "iptables-legacy"}, want: []string{"iptables-legacy", "iptables-legacy-save"}},
		{name: "then plain", found: []string{"iptables"}, want: []string{"iptables", "iptables-save"}},
		{name: "nothing found falls back to plain", want: []string{"iptables", "iptables-save"}},
		{name: "explicit bin derives save", bin: "/sbin/iptables-legacy", want: []string{"/sbin/iptables-legacy", "/sbin/iptables-legacy-save"}},
		{name: "explicit save", bin: "iptables-nft", saveBin: "/opt/save", want: []string{"iptables-nft", "/opt/save"}},
		{
			name: "ipv6 siblings", found: []string{"iptables-nft"}, ipv6: true,
			want: []string{"iptables-nft", "iptables-nft-save", "ip6tables-nft", "ip6tables-nft-save"},
		},
		{
			name: "ipv6 with paths", bin: "/usr/sbin/iptables-legacy", ipv6: true,
			want: []string{"/usr/sbin/iptables-legacy", "/usr/sbin/iptables-legacy-save", "/usr/sbin/ip6tables-legacy", "/usr/sbin/ip6tables-legacy-save"},
		},
		{name: "ipv6 needs an iptables name", bin: "/opt/fw", ipv6: true, wantErrSubstr: `"/opt/fw"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newTestRunner(&fakeExec{}, tt.found...)
			cfg := DefaultConfig()
			cfg.FirewallBinPath, cfg.FirewallSaveBinPath, cfg.IPv6 = tt.bin, tt.saveBin, tt.ipv6
			fams, err := r.plan(cfg)
			if tt.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrSubstr) {
					t.Fatalf("plan error = %v, want one containing %s", err, tt.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			var got []string
			for i, f := range fams {
				if want := Family(i); f.rules.Family != want {
					t.Errorf("family %d is %v, want %v", i, f.rules.Family, want)
				}
				got = append(got, f.bin, f.saveBin)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("binaries = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCloseWait(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "net", "netfilter", "nf_conntrack_tcp_timeout_close_wait")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("60\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.TimeoutCloseWaitSecs = 3600

	r, _ := newTestRunner(&fakeExec{}, "iptables-nft")
	r.sysctlDir = dir
	if err := r.run(context.Background(), cfg); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "3600\n" {
		t.Errorf("sysctl file = %q, want %q", got, "3600\n")
	}

	// A missing sysctl (no conntrack module) is only a warning.
	f := &fakeExec{}
	r, logs := newTestRunner(f, "iptables-nft")
	r.sysctlDir = filepath.Join(dir, "missing")
	if err := r.run(context.Background(), cfg); err != nil {
		t.Fatalf("run with missing sysctl: %v", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), closeWaitSysctl) {
		t.Errorf("missing sysctl not logged as a warning:\n%s", logs.String())
	}
	if len(f.calls) == 0 {
		t.Error("rules were not applied after the sysctl failure")
	}
}

func TestExecCommandErrorNamesCommandAndStderr(t *testing.T) {
	_, err := execCommand(context.Background(), "sh", "-c", "echo 'no such chain' >&2; exit 4")
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"sh -c", "exit status 4", "no such chain"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	out, err := execCommand(context.Background(), "sh", "-c", "echo hello")
	if err != nil || out != "hello\n" {
		t.Errorf("execCommand = %q, %v; want %q, nil", out, err, "hello\n")
	}
}

func TestShellJoin(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-t", "nat"}, "iptables -t nat"},
		{[]string{""}, "iptables ''"},
		{[]string{"a b"}, "iptables 'a b'"},
		{[]string{"it's"}, `iptables 'it'\''s'`},
	}
	for _, tt := range tests {
		if got := shellJoin("iptables", tt.args); got != tt.want {
			t.Errorf("shellJoin(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func assertCalls(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands mismatch\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
