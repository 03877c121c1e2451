package config

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// Identity configures the proxy's mesh identity and mTLS.
type Identity struct {
	// Enabled is false when LINKERD2_PROXY_IDENTITY_DISABLED=true or when no
	// identity variable is set at all (a proxy outside the mesh's trust).
	Enabled bool
	// Dir, when set, receives the generated key (key.p8) and CSR (csr.der).
	Dir string
	// SvcAddr and SvcName locate the identity service; SvcName is the
	// identity it must present (not needed for a loopback SvcAddr, which is
	// reached without TLS).
	SvcAddr, SvcName string
	// LocalName is the identity this proxy asks for.
	LocalName string
	// TokenFile holds the token proving who this workload is.
	TokenFile string
	// TrustAnchorsPEM is the PEM bundle of trust anchors.
	TrustAnchorsPEM string
	// MinRefresh and MaxRefresh bound when the certificate is renewed
	// (otherwise at 70% of its lifetime).
	MinRefresh, MaxRefresh time.Duration
}

// parseIdentity fills c.Identity. Identity is required as a whole: once any
// of its variables is set, the ones it needs must be set too.
func (p *envParser) parseIdentity(c *Config) {
	id := &c.Identity
	disabled := false
	p.bool(proxyenv.IdentityDisabled, &disabled)
	any := false
	for _, name := range []string{proxyenv.IdentitySvcAddr, proxyenv.IdentitySvcName, proxyenv.IdentityLocalName,
		proxyenv.IdentityTokenFile, proxyenv.IdentityTrustAnchors, proxyenv.IdentityDir} {
		if strings.TrimSpace(p.env[name]) != "" {
			any = true
		}
	}
	if disabled || !any {
		return
	}
	id.Enabled = true
	str := func(name string, dst *string) {
		p.parse(name, func(v string) error { *dst = v; return nil })
	}
	str(proxyenv.IdentityDir, &id.Dir)
	str(proxyenv.IdentitySvcName, &id.SvcName)
	str(proxyenv.IdentityLocalName, &id.LocalName)
	str(proxyenv.IdentityTokenFile, &id.TokenFile)
	p.parse(proxyenv.IdentityTrustAnchors, func(v string) error {
		if !strings.Contains(v, "-----BEGIN CERTIFICATE-----") {
			return errors.New("not a PEM certificate bundle")
		}
		id.TrustAnchorsPEM = v
		return nil
	})
	p.parse(proxyenv.IdentitySvcAddr, func(v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("invalid address: %w", err)
		}
		id.SvcAddr = v
		return nil
	})
	p.duration(proxyenv.IdentityMinRefresh, &id.MinRefresh)
	p.duration(proxyenv.IdentityMaxRefresh, &id.MaxRefresh)

	for name, v := range map[string]string{
		proxyenv.IdentitySvcAddr: id.SvcAddr, proxyenv.IdentityLocalName: id.LocalName,
		proxyenv.IdentityTokenFile: id.TokenFile, proxyenv.IdentityTrustAnchors: id.TrustAnchorsPEM,
	} {
		if v == "" && strings.TrimSpace(p.env[name]) == "" {
			p.errs = append(p.errs, &EnvError{Name: name, Err: errors.New("required when identity is enabled (set " + proxyenv.IdentityDisabled + "=true to run without)")})
		}
	}
	if id.SvcAddr != "" && id.SvcName == "" && !IsLoopbackAddr(id.SvcAddr) {
		p.errs = append(p.errs, &EnvError{Name: proxyenv.IdentitySvcName, Err: errors.New("required unless " + proxyenv.IdentitySvcAddr + " is a loopback address")})
	}
}

// IsLoopbackAddr reports whether host:port names a loopback host
// (127.0.0.0/8, ::1 or localhost): control-plane addresses reached without TLS.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	host = strings.TrimSuffix(host, ".")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DialTarget returns the gRPC target to dial for a control-plane address.
// A localhost name ("localhost:8080", or "localhost.:8080" as the chart
// writes it) becomes 127.0.0.1: the proxy answers localhost itself, as RFC
// 6761 asks of resolvers and as Linkerd's proxy does, instead of asking
// DNS; Go's resolver matches /etc/hosts only without the trailing dot, and
// the cluster's DNS need not know the name. Other addresses are returned
// unchanged.
func DialTarget(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || strings.TrimSuffix(host, ".") != "localhost" {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", port)
}
