package destination

import (
	"net/netip"
	"testing"

	"github.com/linkerd-go/linkerd/pkg/k8s"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"google.golang.org/protobuf/proto"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestEndpointMessage checks one complete Update message, field by field,
// including a control plane and trust domain other than the defaults and
// an IPv6 endpoint.
func TestEndpointMessage(t *testing.T) {
	h := newHarness(t, Config{ControllerNamespace: "mesh", TrustDomain: "example.org"})
	slice := newSlice("web-a", "web", slicePorts("http=8080"), newEp("fd00::7", "web-0", inZone("z1")))
	slice.AddressType = discoveryv1.AddressTypeIPv6
	h.apply(
		newSvc("web", "fd00::a", svcPort("http", 80, intstr.FromString("http"))),
		slice,
		newPod("web-0", "fd00::7", meshedBy("mesh")),
	)
	sub := h.subscribe("web.ns.svc.cluster.local:80")
	tr := <-sub.queue
	want := &destinationv1.Update{Kind: &destinationv1.Update_Add{Add: &destinationv1.EndpointSet{
		MetricLabels: map[string]string{"namespace": "ns", "service": "web"},
		Endpoints: []*destinationv1.Endpoint{{
			Addr:        &destinationv1.TcpAddress{Ip: netip.MustParseAddr("fd00::7").AsSlice(), Port: 8080},
			Weight:      10000,
			TlsIdentity: "sa.ns.serviceaccount.identity.mesh.example.org",
			Hint:        &destinationv1.ProtocolHint{H2: true},
			MetricLabels: map[string]string{
				"pod": "web-0", "deployment": "web", "serviceaccount": "sa", "pod_template_hash": "abc12",
				"control_plane_ns": "mesh", "zone": "z1",
			},
		}},
	}}}
	if len(tr.updates) != 1 || !proto.Equal(tr.updates[0], want) {
		t.Errorf("got %v\nwant %v", tr.updates, want)
	}
	if len(tr.updates) == 1 && len(tr.updates[0].GetAdd().GetEndpoints()[0].GetAddr().GetIp()) != 16 {
		t.Error("IPv6 address is not 16 bytes")
	}
}

// TestH2UpgradeHint checks the h2 hint of a meshed endpoint follows
// -enable-h2-upgrade.
func TestH2UpgradeHint(t *testing.T) {
	for _, disable := range []bool{false, true} {
		h := newHarness(t, Config{DisableH2Upgrade: disable})
		h.apply(newPod("web-0", "10.42.0.8", meshedBy(DefaultControllerNamespace)))
		sub := h.subscribe("10.42.0.8:8080")
		tr := <-sub.queue
		ep := tr.updates[0].GetAdd().GetEndpoints()[0]
		if ep.GetTlsIdentity() == "" || ep.GetHint().GetH2() == disable {
			t.Errorf("DisableH2Upgrade=%t: identity %q, h2 hint %t", disable, ep.GetTlsIdentity(), ep.GetHint().GetH2())
		}
	}
}

func TestIPv4AddressIs4Bytes(t *testing.T) {
	a := tcpAddress(netip.MustParseAddrPort("10.0.0.1:80"))
	if len(a.Ip) != 4 || a.Port != 80 {
		t.Errorf("tcpAddress = %v", a)
	}
}

func TestDefaultOpaquePortsConfig(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ports  k8s.PortSet
		opaque bool
	}{
		{"nil means Linkerd's defaults", nil, true},
		{"empty means none", k8s.PortSet{}, false},
		{"custom", k8s.MustParsePortSet("5000-6000"), true},
	} {
		h := newHarness(t, Config{DefaultOpaquePorts: tt.ports})
		h.apply(newPod("db-0", "10.42.0.7"))
		sub := h.subscribe("10.42.0.7:5432")
		tr := <-sub.queue
		got := tr.updates[0].GetAdd().GetEndpoints()[0].GetHint().GetOpaque()
		if got != tt.opaque {
			t.Errorf("%s: opaque = %t, want %t", tt.name, got, tt.opaque)
		}
	}
}

func TestDiff(t *testing.T) {
	ep := func(addr string, id string) *destinationv1.Endpoint {
		return &destinationv1.Endpoint{Addr: tcpAddress(netip.MustParseAddrPort(addr)), Weight: 10000, TlsIdentity: id}
	}
	snap := func(exists bool, labels map[string]string, eps ...*destinationv1.Endpoint) *snapshot {
		s := &snapshot{exists: exists, labels: labels, endpoints: map[netip.AddrPort]*destinationv1.Endpoint{}}
		for _, e := range eps {
			a, _ := netip.AddrFromSlice(e.Addr.Ip)
			s.endpoints[netip.AddrPortFrom(a, uint16(e.Addr.Port))] = e
		}
		return s
	}
	l1 := map[string]string{"service": "a"}
	l2 := map[string]string{"service": "b"}
	tests := []struct {
		name     string
		from, to *snapshot
		want     []string
	}{
		{"nothing sent, unknown", nil, snap(false, nil), []string{"no_endpoints exists=false"}},
		{"nothing sent, empty", nil, snap(true, l1), []string{"no_endpoints exists=true"}},
		{"nothing sent, endpoints", nil, snap(true, l1, ep("10.0.0.2:80", ""), ep("10.0.0.1:80", "")),
			[]string{"add {service=a} 10.0.0.1:80 id=- hint=- {} 10.0.0.2:80 id=- hint=- {}"}},
		{"same empty", snap(true, l1), snap(true, l1), nil},
		{"empty to unknown", snap(true, l1), snap(false, nil), []string{"no_endpoints exists=false"}},
		{"endpoints to empty", snap(true, l1, ep("10.0.0.1:80", "")), snap(true, l1), []string{"no_endpoints exists=true"}},
		{"unchanged", snap(true, l1, ep("10.0.0.1:80", "")), snap(true, l1, ep("10.0.0.1:80", "")), nil},
		{"changed endpoint is re-added", snap(true, l1, ep("10.0.0.1:80", "")), snap(true, l1, ep("10.0.0.1:80", "x")),
			[]string{"add {service=a} 10.0.0.1:80 id=x hint=- {}"}},
		{"remove before add", snap(true, l1, ep("10.0.0.1:80", ""), ep("10.0.0.3:80", "")), snap(true, l1, ep("10.0.0.3:80", ""), ep("10.0.0.2:80", "")),
			[]string{"remove 10.0.0.1:80", "add {service=a} 10.0.0.2:80 id=- hint=- {}"}},
		{"set labels change re-adds all", snap(true, l1, ep("10.0.0.1:80", "")), snap(true, l2, ep("10.0.0.1:80", "")),
			[]string{"add {service=b} 10.0.0.1:80 id=- hint=- {}"}},
	}
	for _, tt := range tests {
		var got []string
		for _, u := range diff(tt.from, tt.to) {
			got = append(got, formatUpdate(u))
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
				break
			}
		}
	}
}
