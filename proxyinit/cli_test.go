package proxyinit

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestSimulateGolden runs the command line with --simulate and compares
// stdout with testdata/<name>.golden. Regenerate with: go test -run Golden -update
func TestSimulateGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{
			name: "simulate_default",
			args: []string{"--firewall-bin-path", "iptables-nft"},
		},
		{
			name: "simulate_linkerd_chart",
			// What Linkerd's injector passes by default.
			args: []string{
				"--firewall-bin-path", "iptables-nft", "--firewall-save-bin-path", "iptables-nft-save",
				"--ipv6=false", "--incoming-proxy-port", "4143", "--outgoing-proxy-port", "4140",
				"--proxy-uid", "2102", "--inbound-ports-to-ignore", "4190,4191,4567,4568",
				"--outbound-ports-to-ignore", "4567,4568",
			},
		},
		{
			name: "simulate_everything",
			args: []string{
				"--firewall-bin-path", "/usr/sbin/iptables-legacy", "--ipv6", "--use-wait-flag",
				"--proxy-uid", "1234", "--proxy-gid", "1235",
				"--inbound-ports-to-ignore", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16-20",
				"--inbound-ports-to-ignore", "4191",
				"--outbound-ports-to-ignore", "443,25-27",
				"--ports-to-redirect", "80,8080-8090",
				"--subnets-to-ignore", "10.96.0.0/12,fd00:10::/64", "--subnets-to-ignore", "192.168.1.7/24",
				"--timeout-close-wait-secs", "3600", "--netns", "/var/run/netns/example",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), append(tt.args, "--simulate"), &stdout, &stderr)
			if code != ExitOK {
				t.Fatalf("exit code %d, stderr: %s", code, stderr.String())
			}
			if stderr.Len() != 0 {
				t.Errorf("unexpected stderr: %s", stderr.String())
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, stdout.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if got := stdout.String(); got != string(want) {
				t.Errorf("output differs from %s (run with -update if intended)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestMainUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown flag", args: []string{"--nope"}, want: "unknown flag"},
		{name: "bad port", args: []string{"--inbound-ports-to-ignore", "70000"}, want: "--inbound-ports-to-ignore"},
		{name: "bad range", args: []string{"--outbound-ports-to-ignore", "9-1"}, want: "--outbound-ports-to-ignore"},
		{name: "bad redirect port", args: []string{"--ports-to-redirect", "x"}, want: "--ports-to-redirect"},
		{name: "bad subnet", args: []string{"--subnets-to-ignore", "10.0.0.0"}, want: "--subnets-to-ignore"},
		{name: "bad proxy port", args: []string{"--incoming-proxy-port", "0"}, want: "incoming proxy port"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, want: "--log-level"},
		{name: "bad log format", args: []string{"--log-format", "xml"}, want: "--log-format"},
		{name: "positional argument", args: []string{"extra"}, want: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), append(tt.args, "--simulate"), &stdout, &stderr)
			if code != ExitUsage {
				t.Errorf("exit code = %d, want %d", code, ExitUsage)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("nothing should be simulated, got:\n%s", stdout.String())
			}
		})
	}
}

func TestMainRuntimeErrorExitCode(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"--firewall-bin-path", "/nonexistent/iptables-nft"}, &stdout, &stderr)
	if code != ExitError {
		t.Errorf("exit code = %d, want %d", code, ExitError)
	}
	if !strings.Contains(stderr.String(), "/nonexistent/iptables-nft") {
		t.Errorf("error does not name the binary: %s", stderr.String())
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"msg":"shown"`) {
		t.Errorf("unexpected log output: %s", got)
	}
}
