package localmesh

import (
	"context"
	"fmt"
	"net/netip"
)

// hostLink connects the host to the mesh's bridge the way a Kubernetes
// node reaches its pods: a veth pair from the host into the switch
// namespace, the host side with the subnet's first address (never given
// to a pod), which also routes the pods' subnet through it. The CLI on
// the host can then reach the control plane and pods by their IPs
// (metrics API, destination, a proxy's admin port). Deleting the switch
// namespace (Down) deletes the pair.
func hostLink(ctx context.Context, s *State) (netip.Addr, error) {
	hostIf := s.Prefix + "host"
	addr := s.Subnet.Masked().Addr().Next()
	for _, args := range [][]string{
		{"link", "add", hostIf, "type", "veth", "peer", "name", "host0", "netns", s.SwitchNS},
		{"-n", s.SwitchNS, "link", "set", "host0", "master", bridgeName, "up"},
		{"addr", "add", netip.PrefixFrom(addr, s.Subnet.Bits()).String(), "dev", hostIf},
		{"link", "set", hostIf, "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return netip.Addr{}, fmt.Errorf("connect the host to the mesh: %w", err)
		}
	}
	return addr, nil
}
