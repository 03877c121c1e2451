package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// Destination configures service discovery.
type Destination struct {
	// SvcAddr is the destination service; "" disables discovery (traffic
	// goes to original destinations).
	SvcAddr string
	// SvcName is the identity the destination service proves (not needed on loopback).
	SvcName string
	// Context is sent with every lookup ({"ns":..,"nodeName":..,"pod":..}).
	Context string
	// Suffixes are the DNS suffixes whose names are looked up ("svc.cluster.local.").
	Suffixes []string
	// Networks are the IP networks whose addresses are looked up.
	Networks []netip.Prefix
	// IdleTimeout drops lookups nobody used for this long.
	IdleTimeout time.Duration
}

func defaultDestination() Destination {
	return Destination{
		Suffixes: []string{"svc.cluster.local."},
		Networks: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"),
			netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16"),
			netip.MustParsePrefix("fd00::/8"),
		},
		IdleTimeout: 5 * time.Second,
	}
}

func (p *envParser) parseDestination(c *Config) {
	d := &c.Destination
	p.parse(proxyenv.DestinationSvcAddr, func(v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("invalid address: %w", err)
		}
		d.SvcAddr = v
		return nil
	})
	p.parse(proxyenv.DestinationSvcName, func(v string) error { d.SvcName = v; return nil })
	p.parse(proxyenv.DestinationContext, func(v string) error { d.Context = v; return nil })
	p.parse(proxyenv.DestinationProfileSuffixes, func(v string) error {
		d.Suffixes = nil
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				d.Suffixes = append(d.Suffixes, s)
			}
		}
		return nil
	})
	p.parse(proxyenv.DestinationProfileNetworks, func(v string) error {
		var nets []netip.Prefix
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			n, err := netip.ParsePrefix(s)
			if err != nil {
				return fmt.Errorf("invalid network %q", s)
			}
			nets = append(nets, n.Masked())
		}
		d.Networks = nets
		return nil
	})
	p.duration(proxyenv.OutboundDiscoveryIdle, &d.IdleTimeout)
	if d.SvcAddr != "" && d.SvcName == "" && !IsLoopbackAddr(d.SvcAddr) {
		p.errs = append(p.errs, &EnvError{Name: proxyenv.DestinationSvcName, Err: errors.New("required unless " + proxyenv.DestinationSvcAddr + " is a loopback address")})
	}
}
