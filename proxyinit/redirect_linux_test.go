package proxyinit

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testnet"
)

// TestIntegrationRedirect checks what the rules do to traffic, with each
// firewall mode: a pod's namespace with the rules and a client's namespace
// joined by a veth pair, a listener for each place a connection may land.
// nftables mode runs through the command line with no iptables on PATH,
// so the automatic mode falls back to it.
func TestIntegrationRedirect(t *testing.T) {
	testnet.Require(t, "ip", "setpriv", "bash")
	for _, mode := range []string{ModeIPTables, ModeNftables} {
		t.Run(mode, func(t *testing.T) {
			if mode == ModeIPTables {
				_, err := exec.LookPath("iptables")
				requireEnv(t, err == nil, "iptables is not installed")
			}
			pod, client := newNetNS(t), newNetNS(t)
			podPath, clientPath := "/var/run/netns/"+pod, "/var/run/netns/"+client
			for _, args := range [][]string{
				{"-n", pod, "link", "add", "vp", "type", "veth", "peer", "name", "vc", "netns", client},
				{"-n", pod, "addr", "add", "10.77.0.2/24", "dev", "vp"},
				{"-n", client, "addr", "add", "10.77.0.1/24", "dev", "vc"},
				{"-n", pod, "link", "set", "vp", "up"},
				{"-n", client, "link", "set", "vc", "up"},
				{"-n", pod, "link", "set", "lo", "up"},
				{"-n", client, "link", "set", "lo", "up"},
			} {
				if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
					t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
				}
			}
			// Each listener answers with its name.
			for _, l := range []struct{ ns, addr, name string }{
				{podPath, ":4143", "inbound-proxy"},
				{podPath, ":4140", "outbound-proxy"},
				{podPath, ":4191", "admin"},
				{podPath, ":8080", "app"},
				{clientPath, ":80", "client-80"},
				{clientPath, ":443", "client-443"},
			} {
				serveName(t, l.ns, l.addr, l.name)
			}

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if mode == ModeIPTables {
				cfg := DefaultConfig()
				cfg.FirewallMode = ModeIPTables
				cfg.OutboundPortsToIgnore = []PortRange{{443, 443}}
				cfg.NetNS = podPath
				if err := Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard); err != nil {
					t.Fatal(err)
				}
			} else {
				// Twice: the second run replaces the table.
				for range 2 {
					cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcessMain$", "--",
						"--netns", podPath, "--outbound-ports-to-ignore", "443")
					cmd.Env = append(os.Environ(), "PROXYINIT_HELPER_PROCESS=1", "PATH=/nonexistent")
					out, err := cmd.CombinedOutput()
					if err != nil {
						t.Fatalf("linkerd-init without iptables on PATH: %v\n%s", err, out)
					}
					if !strings.Contains(string(out), "mode=nftables") {
						t.Fatalf("linkerd-init did not fall back to nftables:\n%s", out)
					}
				}
			}

			for _, c := range []struct {
				what, ns, addr, want string
			}{
				{"inbound to the app", clientPath, "10.77.0.2:8080", "inbound-proxy"},
				{"inbound to the admin port (ignored)", clientPath, "10.77.0.2:4191", "admin"},
				{"outbound", podPath, "10.77.0.1:80", "outbound-proxy"},
				{"outbound to an ignored port", podPath, "10.77.0.1:443", "client-443"},
				{"over loopback", podPath, "127.0.0.1:8080", "app"},
			} {
				if got := dialName(t, c.ns, c.addr); got != c.want {
					t.Errorf("%s (%s): answered by %q, want %q", c.what, c.addr, got, c.want)
				}
			}
			// The proxy's own traffic (its uid) goes out as it is.
			out, err := exec.CommandContext(ctx, "ip", "netns", "exec", pod, "setpriv", "--reuid=2102", "--regid=2102", "--clear-groups",
				"bash", "-c", "exec 3<>/dev/tcp/10.77.0.1/80 && cat <&3").CombinedOutput()
			if err != nil || string(out) != "client-80" {
				t.Errorf("outbound as the proxy's uid: answered by %q (%v), want %q", out, err, "client-80")
			}
		})
	}
}

// serveName listens on addr in the network namespace ns and answers every
// connection with name, until the test ends.
func serveName(t *testing.T, ns, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := inNetNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, name)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
}

// dialName connects to addr from the network namespace ns and returns what
// the listener that took the connection answered.
func dialName(t *testing.T, ns, addr string) string {
	t.Helper()
	var got string
	err := inNetNS(ns, func() error {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		got = string(b)
		return err
	})
	if err != nil {
		t.Errorf("dial %s from %s: %v", addr, ns, err)
	}
	return got
}
