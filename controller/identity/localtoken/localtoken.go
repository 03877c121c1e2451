// Package localtoken issues and validates identity tokens for a mesh that
// runs without Kubernetes. A token is
//
//	base64url(JSON claims) "." base64url(HMAC-SHA256(key, "localtoken/v1." + first part))
//
// where the claims name a ServiceAccount and namespace and carry an expiry.
// Whoever holds the key can mint tokens for any workload, so the key must
// be as private as the issuer's signing key.
package localtoken

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"time"

	ctlidentity "github.com/linkerd-go/linkerd/controller/identity"
	"github.com/linkerd-go/linkerd/pkg/identity"
)

const (
	// MinKeyLen is the shortest key accepted, in bytes.
	MinKeyLen = 32
	// DefaultControllerNamespace and DefaultTrustDomain complete identity
	// names when an Issuer leaves them empty.
	DefaultControllerNamespace = "linkerd"
	DefaultTrustDomain         = "cluster.local"

	version = 1
	macTag  = "localtoken/v1."
	// maxFutureIssue tolerates an issuer whose clock runs ahead.
	maxFutureIssue = time.Minute
	maxTokenLen    = 4096
)

// Claims is what a token asserts.
type Claims struct {
	Version        int    `json:"v"`
	ServiceAccount string `json:"sa"`
	Namespace      string `json:"ns"`
	IssuedAt       int64  `json:"iat"` // Unix seconds
	Expires        int64  `json:"exp"` // Unix seconds
}

// Issuer mints and validates tokens with a shared HMAC key.
type Issuer struct {
	// Key is the HMAC-SHA256 key, at least MinKeyLen bytes.
	Key []byte
	// ControllerNamespace and TrustDomain complete the identity names
	// Validate returns; empty means the defaults.
	ControllerNamespace string
	TrustDomain         string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

var _ ctlidentity.TokenValidator = (*Issuer)(nil)

// GenerateKey returns a new random key of MinKeyLen bytes.
func GenerateKey() ([]byte, error) {
	k := make([]byte, MinKeyLen)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate local token key: %w", err)
	}
	return k, nil
}

// LoadKey reads a key file. Its entire contents are the key.
func LoadKey(path string) ([]byte, error) {
	k, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read local token key: %w", err)
	}
	if len(k) < MinKeyLen {
		return nil, fmt.Errorf("local token key %s: %d bytes, want at least %d", path, len(k), MinKeyLen)
	}
	return k, nil
}

// Issue returns a token for ServiceAccount sa in namespace ns, valid for
// ttl.
func (i *Issuer) Issue(sa, ns string, ttl time.Duration) ([]byte, error) {
	if err := i.checkKey(); err != nil {
		return nil, err
	}
	if err := identity.ValidateLabel(sa); err != nil {
		return nil, fmt.Errorf("issue local token: service account: %w", err)
	}
	if err := identity.ValidateLabel(ns); err != nil {
		return nil, fmt.Errorf("issue local token: namespace: %w", err)
	}
	if ttl < time.Second {
		return nil, fmt.Errorf("issue local token: ttl %s is shorter than a second", ttl)
	}
	now := i.now()
	payload, err := json.Marshal(Claims{
		Version: version, ServiceAccount: sa, Namespace: ns,
		IssuedAt: now.Unix(), Expires: now.Add(ttl).Unix(),
	})
	if err != nil {
		return nil, fmt.Errorf("issue local token: %w", err)
	}
	enc := base64.RawURLEncoding
	body := enc.EncodeToString(payload)
	tok := body + "." + enc.EncodeToString(i.mac(body))
	return []byte(tok), nil
}

// Verify checks token's MAC and lifetime and returns its claims. Errors
// about the token wrap ctlidentity.ErrTokenRejected; an unusable key is
// reported without it.
func (i *Issuer) Verify(token []byte) (*Claims, error) {
	if err := i.checkKey(); err != nil {
		return nil, err
	}
	token = bytes.TrimSpace(token)
	if len(token) > maxTokenLen {
		return nil, rejected("token is %d bytes long", len(token))
	}
	body, sig, ok := bytes.Cut(token, []byte("."))
	if !ok || bytes.IndexByte(sig, '.') >= 0 {
		return nil, rejected("token is not two dot-separated parts")
	}
	enc := base64.RawURLEncoding
	mac, err := enc.DecodeString(string(sig))
	if err != nil {
		return nil, rejected("token signature encoding: %v", err)
	}
	if !hmac.Equal(mac, i.mac(string(body))) {
		return nil, rejected("token signature does not match")
	}
	payload, err := enc.DecodeString(string(body))
	if err != nil {
		return nil, rejected("token claims encoding: %v", err)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, rejected("token claims: %v", err)
	}
	if c.Version != version {
		return nil, rejected("token version %d, want %d", c.Version, version)
	}
	now := i.now()
	if exp := time.Unix(c.Expires, 0); !now.Before(exp) {
		return nil, rejected("token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if iat := time.Unix(c.IssuedAt, 0); iat.After(now.Add(maxFutureIssue)) {
		return nil, rejected("token issued in the future, at %s", iat.UTC().Format(time.RFC3339))
	}
	if identity.ValidateLabel(c.ServiceAccount) != nil || identity.ValidateLabel(c.Namespace) != nil {
		return nil, rejected("token names an invalid service account %q or namespace %q", c.ServiceAccount, c.Namespace)
	}
	return &c, nil
}

// Validate implements ctlidentity.TokenValidator: it returns the identity
// name of the token's ServiceAccount.
func (i *Issuer) Validate(_ context.Context, token []byte) (string, error) {
	c, err := i.Verify(token)
	if err != nil {
		return "", err
	}
	cns, td := i.ControllerNamespace, i.TrustDomain
	if cns == "" {
		cns = DefaultControllerNamespace
	}
	if td == "" {
		td = DefaultTrustDomain
	}
	return identity.Name(c.ServiceAccount, c.Namespace, cns, td), nil
}

func (i *Issuer) checkKey() error {
	if len(i.Key) < MinKeyLen {
		return fmt.Errorf("local token key is %d bytes, want at least %d", len(i.Key), MinKeyLen)
	}
	return nil
}

func (i *Issuer) mac(body string) []byte {
	h := hmac.New(sha256.New, i.Key)
	h.Write([]byte(macTag))
	h.Write([]byte(body))
	return h.Sum(nil)
}

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

func rejected(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ctlidentity.ErrTokenRejected, fmt.Sprintf(format, args...))
}
