package destination

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseAuthority(t *testing.T) {
	svc := func(ns, name string, port uint32) target { return target{namespace: ns, service: name, port: port} }
	ip := func(s string, port uint32) target { return target{ip: netip.MustParseAddr(s), port: port} }
	tests := []struct {
		in      string
		domain  string
		want    target
		wantErr bool
	}{
		{in: "web.emojivoto.svc.cluster.local:8080", want: svc("emojivoto", "web", 8080)},
		{in: "web.emojivoto.svc.cluster.local", want: svc("emojivoto", "web", 80)},
		{in: "web.emojivoto.svc.cluster.local.:8080", want: svc("emojivoto", "web", 8080)},
		{in: "Web.Emojivoto.SVC.cluster.local:80", want: svc("emojivoto", "web", 80)},
		{in: "web.ns.svc.example.org:80", domain: "example.org", want: svc("ns", "web", 80)},
		{in: "web.ns.svc.example.org.:80", domain: "example.org.", want: svc("ns", "web", 80)},
		{in: "web-0.web.ns.svc.cluster.local:80", want: target{hostname: "web-0", service: "web", namespace: "ns", port: 80}},
		{in: "10.42.0.7:8080", want: ip("10.42.0.7", 8080)},
		{in: "10.42.0.7", want: ip("10.42.0.7", 80)},
		{in: "[::ffff:10.42.0.7]:53", want: ip("10.42.0.7", 53)},
		{in: "[fd00::1]:8080", want: ip("fd00::1", 8080)},
		{in: "[fd00::1]", want: ip("fd00::1", 80)},
		{in: "fd00::1", want: ip("fd00::1", 80)},
		// Names the control plane does not serve.
		{in: "example.com:443", want: target{external: true, port: 443}},
		{in: "web.emojivoto:80", want: target{external: true, port: 80}},
		{in: "web.ns.svc.cluster.local:80", domain: "example.org", want: target{external: true, port: 80}},
		{in: "localhost", want: target{external: true, port: 80}},
		// Invalid.
		{in: "", wantErr: true},
		{in: ":80", wantErr: true},
		{in: "web.ns.svc.cluster.local:", wantErr: true},
		{in: "web.ns.svc.cluster.local:0", wantErr: true},
		{in: "web.ns.svc.cluster.local:65536", wantErr: true},
		{in: "web.ns.svc.cluster.local:http", wantErr: true},
		{in: "ns.svc.cluster.local:80", wantErr: true},
		{in: "a.b.c.d.svc.cluster.local:80", wantErr: true},
		{in: "we_b.ns.svc.cluster.local:80", wantErr: true},
		{in: "-web.ns.svc.cluster.local:80", wantErr: true},
		{in: "web..ns.svc.cluster.local:80", wantErr: true},
		{in: "[10.0.0.1]:80", wantErr: true},
		{in: "[fd00::1:80", wantErr: true},
		{in: "[fd00::1]x", wantErr: true},
		{in: "[fe80::1%eth0]:80", wantErr: true},
		{in: "fe80::1%eth0", wantErr: true},
	}
	for _, tt := range tests {
		domain := tt.domain
		if domain == "" {
			domain = "cluster.local"
		}
		got, err := parseAuthority(tt.in, domain)
		if tt.wantErr {
			if !errors.Is(err, errInvalidAuthority) {
				t.Errorf("parseAuthority(%q) = %+v, %v; want an invalid authority error", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseAuthority(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}
