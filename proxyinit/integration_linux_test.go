package proxyinit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testnet"
)

// TestIntegrationNetns applies the real rules, twice, inside a throwaway
// network namespace with each iptables backend, and checks with
// iptables-save that every rule is present exactly once.
func TestIntegrationNetns(t *testing.T) {
	testnet.Require(t, "ip")

	for _, backend := range []string{"nft", "legacy"} {
		t.Run(backend, func(t *testing.T) {
			bins := []string{"iptables-" + backend, "iptables-" + backend + "-save", "ip6tables-" + backend, "ip6tables-" + backend + "-save"}
			for _, b := range bins {
				_, err := exec.LookPath(b)
				requireEnv(t, err == nil, b+" is not installed")
			}
			ns := newNetNS(t)
			nsPath := "/var/run/netns/" + ns

			cfg := DefaultConfig()
			cfg.FirewallBinPath = "iptables-" + backend
			cfg.IPv6 = true
			cfg.ProxyGID = 2103
			cfg.InboundPortsToIgnore = []PortRange{{8000, 8005}, {9000, 9000}}
			cfg.OutboundPortsToIgnore = []PortRange{{443, 443}, {8443, 8443}}
			cfg.SubnetsToIgnore = prefixes(t, "10.96.0.0/12", "fd00:10::/64")
			cfg.NetNS = nsPath

			// Written out by hand, independently of BuildRules.
			wantV4 := []string{
				"-A PREROUTING -p tcp -j PROXY_INIT_REDIRECT",
				"-A OUTPUT -p tcp -j PROXY_INIT_OUTPUT",
				"-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
				"-A PROXY_INIT_OUTPUT -m owner --gid-owner 2103 -j RETURN",
				"-A PROXY_INIT_OUTPUT -o lo -j RETURN",
				"-A PROXY_INIT_OUTPUT -d 127.0.0.0/8 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -m multiport --dports 443,8443 -j RETURN",
				"-A PROXY_INIT_OUTPUT -d 10.96.0.0/12 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191,8000:8005,9000 -j RETURN",
				"-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
			}
			wantV6 := []string{
				"-A PREROUTING -p tcp -j PROXY_INIT_REDIRECT",
				"-A OUTPUT -p tcp -j PROXY_INIT_OUTPUT",
				"-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
				"-A PROXY_INIT_OUTPUT -m owner --gid-owner 2103 -j RETURN",
				"-A PROXY_INIT_OUTPUT -o lo -j RETURN",
				"-A PROXY_INIT_OUTPUT -d ::1/128 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -m multiport --dports 443,8443 -j RETURN",
				"-A PROXY_INIT_OUTPUT -d fd00:10::/64 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191,8000:8005,9000 -j RETURN",
				"-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
			}

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			for run := 1; run <= 2; run++ {
				if err := Run(ctx, cfg, log, io.Discard); err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
			}
			assertNatTable(t, ns, "iptables-"+backend+"-save", wantV4)
			assertNatTable(t, ns, "ip6tables-"+backend+"-save", wantV6)

			// A third run through the command line, with changed settings,
			// replaces the rules instead of adding to them. It uses
			// "ip netns exec" rather than --netns.
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0],
				"-test.run=^TestHelperProcessMain$", "--",
				"--firewall-bin-path", "iptables-"+backend, "--outgoing-proxy-port", "5140", "--proxy-uid", "2102")
			cmd.Env = append(os.Environ(), "PROXYINIT_HELPER_PROCESS=1")
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("linkerd-init via ip netns exec: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "nat table after configuration") {
				t.Errorf("final nat table was not logged:\n%s", stderr.String())
			}
			assertNatTable(t, ns, "iptables-"+backend+"-save", []string{
				"-A PREROUTING -p tcp -j PROXY_INIT_REDIRECT",
				"-A OUTPUT -p tcp -j PROXY_INIT_OUTPUT",
				"-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
				"-A PROXY_INIT_OUTPUT -o lo -j RETURN",
				"-A PROXY_INIT_OUTPUT -d 127.0.0.0/8 -j RETURN",
				"-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 5140",
				"-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -j RETURN",
				"-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
			})
		})
	}
}

// TestHelperProcessMain runs Main with the arguments after "--" when started
// by TestIntegrationNetns; otherwise it does nothing.
func TestHelperProcessMain(t *testing.T) {
	if os.Getenv("PROXYINIT_HELPER_PROCESS") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(Main(context.Background(), args, os.Stdout, os.Stderr))
}

// newNetNS creates a network namespace removed when the test ends.
func newNetNS(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "l5dtest-init-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	return name
}

// assertNatTable checks that the namespace's nat table holds exactly the
// wanted rules in our chains and jumps, each once, with our chains' rules in
// the wanted order.
func assertNatTable(t *testing.T, ns, saveBin string, want []string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, saveBin, "-t", "nat").CombinedOutput()
	if err != nil {
		t.Fatalf("%s in %s: %v: %s", saveBin, ns, err, out)
	}
	var got []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.HasPrefix(line, "-A ") && strings.Contains(line, "PROXY_INIT_") {
			got = append(got, line)
		}
	}
	counts := map[string]int{}
	for _, line := range got {
		counts[line]++
	}
	for _, w := range want {
		if counts[w] != 1 {
			t.Errorf("%s: rule %q present %d times, want once", saveBin, w, counts[w])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d rules mention PROXY_INIT_, want %d:\n%s", saveBin, len(got), len(want), out)
	}
	// Order within each of our chains matters (RETURNs before REDIRECT).
	for _, chain := range []string{RedirectChain, OutputChain} {
		var g, w []string
		for _, l := range got {
			if strings.HasPrefix(l, "-A "+chain+" ") {
				g = append(g, l)
			}
		}
		for _, l := range want {
			if strings.HasPrefix(l, "-A "+chain+" ") {
				w = append(w, l)
			}
		}
		if strings.Join(g, "\n") != strings.Join(w, "\n") {
			t.Errorf("%s: chain %s order:\ngot:\n%s\nwant:\n%s", saveBin, chain, strings.Join(g, "\n"), strings.Join(w, "\n"))
		}
	}
}
