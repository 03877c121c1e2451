// Package transport holds the proxy's connection-level pieces: the original
// destination of a redirected connection, metered connections and the dialer.
package transport

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OriginalDst returns the destination a connection had before iptables
// redirected it to the proxy (SO_ORIGINAL_DST, IPv4 and IPv6). ok is false
// when the connection was not redirected; the caller then uses the local address.
func OriginalDst(c *net.TCPConn) (addr netip.AddrPort, ok bool, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("original dst: %w", err)
	}
	local, _ := netip.ParseAddrPort(c.LocalAddr().String())
	var serr error
	cerr := raw.Control(func(fd uintptr) {
		if local.Addr().Unmap().Is4() {
			var mreq *unix.IPv6Mreq // 20 bytes: room for a sockaddr_in (16)
			mreq, serr = unix.GetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IP, unix.SO_ORIGINAL_DST)
			if serr == nil {
				b := (*[unsafe.Sizeof(*mreq)]byte)(unsafe.Pointer(mreq))
				port := binary.BigEndian.Uint16(b[2:4])
				addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
			}
			return
		}
		var info *unix.IPv6MTUInfo // sockaddr_in6 (28 bytes) + mtu
		info, serr = unix.GetsockoptIPv6MTUInfo(int(fd), unix.IPPROTO_IPV6, ip6tSOOriginalDst)
		if serr == nil {
			b := (*[unsafe.Sizeof(*info)]byte)(unsafe.Pointer(info))
			port := binary.BigEndian.Uint16(b[2:4])
			addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), port)
		}
	})
	if cerr != nil {
		return netip.AddrPort{}, false, fmt.Errorf("original dst: %w", cerr)
	}
	if serr != nil {
		// ENOENT: no conntrack entry, i.e. the connection was not redirected.
		if serr == unix.ENOENT || serr == unix.ENOPROTOOPT {
			return local, false, nil
		}
		return local, false, fmt.Errorf("original dst: getsockopt: %w", serr)
	}
	return addr, addr != local, nil
}

// ip6tSOOriginalDst is IP6T_SO_ORIGINAL_DST from linux/netfilter_ipv6/ip6_tables.h.
const ip6tSOOriginalDst = 80
