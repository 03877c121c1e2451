// Package meshtls is the mTLS between proxies: TLS 1.3 only, certificates
// from the proxy's identity, peers verified against the trust anchors and
// the identity they are expected to have (sent as SNI).
package meshtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync"
)

// ALPNTransport marks a connection that starts with a transport header
// naming its target port (opaque traffic sent straight to the inbound port).
const ALPNTransport = "transport.l5d.io/v1"

// Source gives the current certificate and the trust anchors; the proxy's
// identity implements it.
type Source interface {
	Name() string
	Certificate() *tls.Certificate
	Roots() *x509.CertPool
}

// ErrNoCertificate means the proxy has no certificate yet.
var ErrNoCertificate = errors.New("no identity certificate yet")

// Configs builds and caches the TLS configurations of one proxy.
type Configs struct {
	src      Source
	sessions tls.ClientSessionCache

	mu      sync.Mutex
	clients map[clientKey]*tls.Config
	server  *tls.Config
}

type clientKey struct{ serverID, alpn string }

// New returns the configurations for src.
func New(src Source) *Configs {
	c := &Configs{src: src, sessions: tls.NewLRUClientSessionCache(1024), clients: map[clientKey]*tls.Config{}}
	c.server = &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if cert := src.Certificate(); cert != nil {
				return cert, nil
			}
			return nil, ErrNoCertificate
		},
		// Meshed clients present their identity; a client without one is
		// still served, with an empty client_id.
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  src.Roots(),
		NextProtos: []string{"h2", "http/1.1", ALPNTransport},
	}
	return c
}

// Server is the configuration that terminates mesh TLS on the inbound side.
func (c *Configs) Server() *tls.Config { return c.server }

// Client is the configuration for a connection to a peer proxy that must
// prove serverID. alpn is "" or ALPNTransport.
func (c *Configs) Client(serverID, alpn string) *tls.Config {
	k := clientKey{serverID, alpn}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cfg := c.clients[k]; cfg != nil {
		return cfg
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         serverID, // SNI, and the name the peer's certificate must carry
		RootCAs:            c.src.Roots(),
		ClientSessionCache: c.sessions,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert := c.src.Certificate(); cert != nil {
				return cert, nil
			}
			return nil, ErrNoCertificate
		},
	}
	if alpn != "" {
		cfg.NextProtos = []string{alpn}
	}
	c.clients[k] = cfg
	return cfg
}

// PeerIdentity returns the verified identity of the peer, "" when it
// presented no certificate.
func PeerIdentity(cs tls.ConnectionState) string {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return ""
	}
	if names := cs.VerifiedChains[0][0].DNSNames; len(names) == 1 {
		return names[0]
	}
	return ""
}
