package discovery

import (
	"context"
	"net/netip"
	"testing"

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
	}{
		{"10.0.0.2:8080", "web.demo", 0},
		{"10.0.0.2:9", "web.demo", 0},
		{"10.0.0.3:3306", "db.demo", DefaultInboundPort},
		{"10.0.0.3:80", "", 0},
		{"10.0.0.9:80", "", 0},
	} {
		bal, err := st.Resolve(context.Background(), Destination{Addr: netip.MustParseAddrPort(tc.addr)})
		if err != nil {
			t.Fatal(err)
		}
		ep := bal.(balance.Single).Endpoint
		if ep.Identity != tc.identity || ep.OpaqueTransportPort != tc.opaque || ep.Addr.String() != tc.addr {
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
