package localmesh

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// hostLink connects the host to the mesh's bridge the way a Kubernetes
// node reaches its pods: a veth pair from the host into the switch
// namespace, the host side with the subnet's first address (never given
// to a pod), which also routes the pods' subnet through it. The CLI on
// the host can then reach the control plane and pods by their IPs
// (metrics API, destination, a proxy's admin port). Deleting the switch
// namespace (Down) deletes the pair.
//
// When a host interface already has an address in the subnet (another
// local mesh on the same subnet), the host is not linked: it returns the
// zero address and why, and the mesh works as before, from inside its pods.
func hostLink(ctx context.Context, s *State) (netip.Addr, string, error) {
	if name := hostInterfaceIn(s.Subnet); name != "" {
		return netip.Addr{}, fmt.Sprintf("the host is not linked to the mesh: %s already has an address in %s", name, s.Subnet), nil
	}
	hostIf := s.Prefix + "host"
	addr := s.Subnet.Masked().Addr().Next()
	for _, args := range [][]string{
		{"link", "add", hostIf, "type", "veth", "peer", "name", "host0", "netns", s.SwitchNS},
		{"-n", s.SwitchNS, "link", "set", "host0", "master", bridgeName, "up"},
		{"addr", "add", netip.PrefixFrom(addr, s.Subnet.Bits()).String(), "dev", hostIf},
		{"link", "set", hostIf, "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return netip.Addr{}, "", fmt.Errorf("connect the host to the mesh: %w", err)
		}
	}
	return addr, "", nil
}

// hostInterfaceIn returns the name of a host interface with an address in
// (or a network overlapping) p, "" when there is none.
func hostInterfaceIn(p netip.Prefix) string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			bits, _ := ipn.Mask.Size()
			if netip.PrefixFrom(ip.Unmap(), bits).Masked().Overlaps(p) {
				return ifc.Name
			}
		}
	}
	return ""
}
