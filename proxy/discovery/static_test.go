package discovery

import (
	"context"
	"net/netip"
	"testing"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/balance"
)

func TestStatic(t *testing.T) {
	st, err := ParseStatic("10.0.0.2=web.demo, 10.0.0.3:3306=db.demo;opaque", OriginalDst{NoTLSReason: "not_provided_by_service_discovery"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr     string
		identity string
		opaque   uint16
		h2       bool // a meshed, not opaque, endpoint accepts HTTP/2
	}{
		{"10.0.0.2:8080", "web.demo", 0, true},
		{"10.0.0.2:9", "web.demo", 0, true},
		{"10.0.0.3:3306", "db.demo", DefaultInboundPort, false},
		{"10.0.0.3:80", "", 0, false},
		{"10.0.0.9:80", "", 0, false},
	} {
		bal, err := st.Resolve(context.Background(), Destination{Addr: netip.MustParseAddrPort(tc.addr)})
		if err != nil {
			t.Fatal(err)
		}
		ep := bal.(balance.Single).Endpoint
		if ep.Identity != tc.identity || ep.OpaqueTransportPort != tc.opaque || ep.Addr.String() != tc.addr || ep.H2 != tc.h2 {
			t.Errorf("%s: got %+v", tc.addr, ep)
		}
		if tc.identity == "" && ep.NoTLSReason != "not_provided_by_service_discovery" {
			t.Errorf("%s: fallback reason %q", tc.addr, ep.NoTLSReason)
		}
	}
	for _, bad := range []string{"10.0.0.2", "10.0.0.2=", "host=web", "10.0.0.2=web;weird"} {
		if _, err := ParseStatic(bad, OriginalDst{}); err == nil {
			t.Errorf("ParseStatic(%q): want error", bad)
		}
	}
}

// TestEndpointHints checks how discovery's protocol hints reach endpoints:
// the h2 hint only for meshed endpoints reached without a transport header.
func TestEndpointHints(t *testing.T) {
	t.Parallel()
	addr := &destinationv1.TcpAddress{Ip: []byte{10, 0, 0, 5}, Port: 8080}
	for _, tc := range []struct {
		name     string
		identity string
		hint     *destinationv1.ProtocolHint
		h2       bool
		opaque   uint16
	}{
		{"meshed, h2", "web.demo", &destinationv1.ProtocolHint{H2: true}, true, 0},
		{"meshed, no hint", "web.demo", nil, false, 0},
		{"not meshed, h2", "", &destinationv1.ProtocolHint{H2: true}, false, 0},
		{"opaque transport", "web.demo", &destinationv1.ProtocolHint{Opaque: true, OpaqueTransportPort: 4143}, false, 4143},
		{"h2 with opaque transport", "web.demo", &destinationv1.ProtocolHint{H2: true, OpaqueTransportPort: 4143}, false, 4143},
	} {
		ep, ok := endpointFrom(&destinationv1.Endpoint{Addr: addr, TlsIdentity: tc.identity, Hint: tc.hint}, nil)
		if !ok || ep.H2 != tc.h2 || ep.OpaqueTransportPort != tc.opaque {
			t.Errorf("%s: H2 %t, opaque transport %d; want %t, %d", tc.name, ep.H2, ep.OpaqueTransportPort, tc.h2, tc.opaque)
		}
	}
}
