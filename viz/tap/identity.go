package tap

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"

	"github.com/linkerd-go/linkerd/proxy/config"
	"github.com/linkerd-go/linkerd/proxy/identity"
	"github.com/linkerd-go/linkerd/proxy/metrics"
)

// ClientIdentity is the tap service's own mesh identity on Kubernetes.
//
// The proxies' tap API (port 4190, which linkerd-init does not redirect)
// serves only a client proving the identity LINKERD2_PROXY_TAP_SVC_NAME
// over mTLS. The tap service therefore holds that identity itself, exactly
// as a proxy does: it generates a key, and the control plane's identity
// service certifies it for tap.<viz-ns>.serviceaccount.identity.<cp-ns>.<td>
// on the proof of the pod's ServiceAccount token (projected with the
// identity.l5d.io audience), renewed before it expires. It then dials the
// proxies' tap port directly (the tap pod's own proxy skips that port), and
// verifies each proxy's identity against the trust anchors.
type ClientIdentity struct {
	id *identity.Identity
}

// NewClientIdentity prepares the key for cfg's identity; Run certifies it.
func NewClientIdentity(cfg config.Identity, log *slog.Logger) (*ClientIdentity, error) {
	if cfg.LocalName == "" || cfg.SvcAddr == "" || cfg.TokenFile == "" {
		return nil, errors.New("the tap identity needs its name, the identity service's address and a token file")
	}
	id, err := identity.New(cfg, metrics.NewRegistry(), log)
	if err != nil {
		return nil, err
	}
	return &ClientIdentity{id: id}, nil
}

// Run obtains and renews the certificate until ctx ends.
func (c *ClientIdentity) Run(ctx context.Context) error { return c.id.Run(ctx) }

// Ready reports whether a certificate is held.
func (c *ClientIdentity) Ready() bool { return c.id.Ready() }

// Name is the identity held.
func (c *ClientIdentity) Name() string { return c.id.Name() }

// TLS is the client configuration to tap the proxy whose identity is
// serverName: the current certificate, the trust anchors.
func (c *ClientIdentity) TLS(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		RootCAs:    c.id.Roots(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert := c.id.Certificate(); cert != nil {
				return cert, nil
			}
			return nil, errors.New("the tap service has no certificate yet")
		},
	}
}
