package httpproxy

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"testing"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/route"
)

// byAuthority resolves authorities from a table to their addresses.
type byAuthority map[string]netip.AddrPort

func (m byAuthority) Resolve(ctx context.Context, dst discovery.Destination) (balance.Balancer, error) {
	if a, ok := m[dst.Authority]; ok {
		dst.Addr = a
	}
	return discovery.OriginalDst{NoTLSReason: "loopback"}.Resolve(ctx, dst)
}

// TestSplit90to10: a profile's dstOverrides send 90% of 1,000 requests to
// one backend and 10% to the other, within ±3%.
func TestSplit90to10(t *testing.T) {
	backend := func(name string) netip.AddrPort {
		be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, name) }))
		return netip.MustParseAddrPort(be.Listener.Addr().String())
	}
	v1, v2 := backend("v1"), backend("v2")
	p, err := route.Compile(&destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local", DstOverrides: []*destinationv1.WeightedDst{
		{Authority: "web-v1.ns.svc.cluster.local", WeightMilli: 900},
		{Authority: "web-v2.ns.svc.cluster.local", WeightMilli: 100},
	}}, "web.ns.svc.cluster.local:80")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, v1.String(), func(o *testOptions) {
		o.Resolver = byAuthority{"web-v1.ns.svc.cluster.local:80": v1, "web-v2.ns.svc.cluster.local:80": v2}
		o.Route = &route.Layer{Registry: o.Metrics,
			Profiles: route.ProfilesFunc(func(context.Context, discovery.Destination) *route.Profile { return p })}
	})
	c := h1Client(h.addr)
	const n = 1000
	counts := map[string]int{}
	for range n {
		resp, err := c.Get("http://web.ns.svc.cluster.local/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		counts[string(b)]++
	}
	t.Logf("split: %v", counts)
	if got := counts["v2"]; got < 70 || got > 130 || counts["v1"]+got != n {
		t.Errorf("v2 got %d of %d (v1 %d), want 100 ± 30", got, n, counts["v1"])
	}
}
