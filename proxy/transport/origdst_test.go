package transport

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/linkerd-go/linkerd/internal/testnet"
)

// TestOriginalDst redirects a connection with iptables inside a throwaway
// network namespace and checks that the listener recovers where it was going.
func TestOriginalDst(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables", "ip6tables")
	pod := testnet.New(t).AddPod("origdst")
	pod.Exec(t, "ip", "-6", "addr", "add", "fd00:248::2/64", "dev", "eth0", "nodad")
	for _, tc := range []struct {
		name, iptables, listen, dial string
		want                         string
	}{
		{"ipv4", "iptables", "0.0.0.0:15001", pod.IP.String() + ":9999", pod.IP.String() + ":9999"},
		{"ipv6", "ip6tables", "[::]:15002", "[fd00:248::2]:9998", "[fd00:248::2]:9998"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, lport, _ := net.SplitHostPort(tc.listen)
			_, dport, _ := net.SplitHostPort(tc.dial)
			pod.Exec(t, tc.iptables, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", dport, "-j", "REDIRECT", "--to-ports", lport)
			ln, err := pod.Listen("tcp", tc.listen)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Conn, 2)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- c
				}
			}()

			// Redirected: the original destination comes back.
			c, err := pod.DialContext(context.Background(), "tcp", tc.dial)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sc := <-accepted
			defer sc.Close()
			got, redirected, err := OriginalDst(sc.(*net.TCPConn))
			if err != nil || !redirected || got != netip.MustParseAddrPort(tc.want) {
				t.Fatalf("OriginalDst = %v, %v, %v; want %s redirected", got, redirected, err, tc.want)
			}

			// Not redirected: the local address, flagged as such.
			host, _, _ := net.SplitHostPort(tc.want)
			direct, err := pod.DialContext(context.Background(), "tcp", net.JoinHostPort(host, lport))
			if err != nil {
				t.Fatal(err)
			}
			defer direct.Close()
			sc2 := <-accepted
			defer sc2.Close()
			got, redirected, err = OriginalDst(sc2.(*net.TCPConn))
			if err != nil || redirected || got.Port() != mustPort(t, lport) {
				t.Fatalf("direct connection: OriginalDst = %v, %v, %v", got, redirected, err)
			}
		})
	}
}

func mustPort(t *testing.T, s string) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort("127.0.0.1:" + s)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}
