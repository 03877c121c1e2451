package destination

import (
	"maps"
	"net/netip"
	"slices"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"google.golang.org/protobuf/proto"
)

// snapshot is the state of a target at one point: whether it exists and its
// endpoints. Snapshots are immutable once built, so they can be shared by
// the watcher and every subscriber.
type snapshot struct {
	exists bool
	// labels are the set-level metric labels (namespace, service).
	labels    map[string]string
	endpoints map[netip.AddrPort]*destinationv1.Endpoint
	// balancer is the Service's balancing algorithm ("": the default).
	balancer string
}

// diff returns the updates that take a client from state from (nil: nothing
// sent yet) to state to:
//   - to has no endpoints: one no_endpoints, unless the client already
//     knows exactly that (no_endpoints also clears the client's set);
//   - otherwise a remove of the addresses that are gone, then an add of
//     the endpoints that are new or changed (an add replaces an endpoint
//     with the same address). When the set-level labels or the balancer
//     change, every endpoint is re-added.
//
// Addresses are sorted, so the result is deterministic.
func diff(from, to *snapshot) []*destinationv1.Update {
	if len(to.endpoints) == 0 {
		if from == nil || len(from.endpoints) > 0 || from.exists != to.exists {
			return []*destinationv1.Update{noEndpoints(to.exists)}
		}
		return nil
	}
	var old map[netip.AddrPort]*destinationv1.Endpoint
	relabel := true
	if from != nil {
		old = from.endpoints
		relabel = !maps.Equal(from.labels, to.labels) || from.balancer != to.balancer
	}
	var ups []*destinationv1.Update
	var removed []netip.AddrPort
	for a := range old {
		if _, ok := to.endpoints[a]; !ok {
			removed = append(removed, a)
		}
	}
	if len(removed) > 0 {
		slices.SortFunc(removed, netip.AddrPort.Compare)
		set := &destinationv1.AddressSet{}
		for _, a := range removed {
			set.Addrs = append(set.Addrs, tcpAddress(a))
		}
		ups = append(ups, &destinationv1.Update{Kind: &destinationv1.Update_Remove{Remove: set}})
	}
	var added []netip.AddrPort
	for a, ep := range to.endpoints {
		if prev, ok := old[a]; relabel || !ok || !proto.Equal(prev, ep) {
			added = append(added, a)
		}
	}
	if len(added) > 0 {
		slices.SortFunc(added, netip.AddrPort.Compare)
		set := &destinationv1.EndpointSet{MetricLabels: to.labels, Balancer: to.balancer}
		for _, a := range added {
			set.Endpoints = append(set.Endpoints, to.endpoints[a])
		}
		ups = append(ups, &destinationv1.Update{Kind: &destinationv1.Update_Add{Add: set}})
	}
	return ups
}

func noEndpoints(exists bool) *destinationv1.Update {
	return &destinationv1.Update{Kind: &destinationv1.Update_NoEndpoints{NoEndpoints: &destinationv1.NoEndpoints{Exists: exists}}}
}

func tcpAddress(a netip.AddrPort) *destinationv1.TcpAddress {
	return &destinationv1.TcpAddress{Ip: a.Addr().AsSlice(), Port: uint32(a.Port())}
}
