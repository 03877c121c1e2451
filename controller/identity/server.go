// Package identity is the mesh's certificate authority: a gRPC service that
// signs proxies' certificate signing requests for the identity their token
// proves, using an issuer certificate loaded (and reloaded) from files.
package identity

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/pki"
	identityv1 "github.com/linkerd-go/linkerd/proto/identity/v1"
)

// ErrTokenRejected is wrapped by TokenValidator errors that mean the token
// is not acceptable (as opposed to: it could not be checked).
var ErrTokenRejected = errors.New("token rejected")

// TokenValidator decides which identity a token proves.
type TokenValidator interface {
	// Validate returns the identity name token proves. An error wrapping
	// ErrTokenRejected means the token is invalid; any other error means it
	// could not be checked right now.
	Validate(ctx context.Context, token []byte) (identity string, err error)
}

// Config configures a Server.
type Config struct {
	// TrustDomain and ControllerNamespace, when set, restrict certificates
	// to identity names of this mesh
	// (<sa>.<ns>.serviceaccount.identity.<ControllerNamespace>.<TrustDomain>).
	TrustDomain         string
	ControllerNamespace string
	// IssuanceLifetime is how long leaf certificates are valid; zero means
	// pki.DefaultLeafLifetime (24h).
	IssuanceLifetime time.Duration
	// ClockSkewAllowance backdates leaf certificates' NotBefore; zero
	// means none (the command-line default is pki.DefaultClockSkew).
	ClockSkewAllowance time.Duration
	// Validator checks tokens. Required.
	Validator TokenValidator
	// Metrics receives counts; nil means metrics nobody exports.
	Metrics *Metrics
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server implements identityv1.IdentityServer.
type Server struct {
	identityv1.UnimplementedIdentityServer

	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	issuer  atomic.Pointer[issuer]
}

// issuer is an immutable snapshot of the signing material.
type issuer struct {
	ca       *pki.CA
	chainDER [][]byte
}

var _ identityv1.IdentityServer = (*Server)(nil)

// NewServer returns a Server without an issuer: until SetIssuer is called
// it refuses every request with Unavailable.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Validator == nil {
		return nil, errors.New("identity server: no token validator")
	}
	if cfg.IssuanceLifetime < 0 || cfg.ClockSkewAllowance < 0 {
		return nil, fmt.Errorf("identity server: negative issuance lifetime %s or clock skew allowance %s", cfg.IssuanceLifetime, cfg.ClockSkewAllowance)
	}
	if cfg.IssuanceLifetime == 0 {
		cfg.IssuanceLifetime = pki.DefaultLeafLifetime
	}
	if (cfg.TrustDomain == "") != (cfg.ControllerNamespace == "") {
		return nil, errors.New("identity server: set both or neither of trust domain and controller namespace")
	}
	if cfg.TrustDomain != "" {
		if err := identity.ValidateDomain(cfg.TrustDomain); err != nil {
			return nil, fmt.Errorf("identity server: trust domain: %w", err)
		}
		if err := identity.ValidateLabel(cfg.ControllerNamespace); err != nil {
			return nil, fmt.Errorf("identity server: controller namespace: %w", err)
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.metrics == nil {
		s.metrics = newUnregisteredMetrics()
	}
	return s, nil
}

// SetIssuer atomically replaces the issuer used for new certificates.
// Requests already signing finish with the issuer they started with. The
// caller is responsible for having checked ca (see Watcher).
func (s *Server) SetIssuer(ca *pki.CA) {
	chain := ca.Chain()
	der := make([][]byte, len(chain))
	for i, c := range chain {
		der[i] = c.Raw
	}
	s.issuer.Store(&issuer{ca: ca, chainDER: der})
	s.metrics.issuerExpiry.Set(float64(ca.Cert.NotAfter.Unix()))
}

// Issuer returns the current issuer, or nil.
func (s *Server) Issuer() *pki.CA {
	if iss := s.issuer.Load(); iss != nil {
		return iss.ca
	}
	return nil
}

// Ready reports whether an issuer is loaded and currently valid.
func (s *Server) Ready() bool {
	iss := s.issuer.Load()
	if iss == nil {
		return false
	}
	now := time.Now()
	return !now.Before(iss.ca.Cert.NotBefore) && now.Before(iss.ca.Cert.NotAfter)
}

// Certify signs the request's CSR for its identity. The checks, in order:
// the request is complete; the identity is a name of this mesh; the CSR
// parses, is self-signed correctly and holds an ECDSA P-256 key; its only
// name is the identity; the token is valid and proves the identity; an
// issuer is loaded.
func (s *Server) Certify(ctx context.Context, req *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
	name := req.GetIdentity()
	log := s.log.With("identity", name)
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		log = log.With("peer", p.Addr.String())
	}
	switch {
	case name == "":
		return nil, s.refuse(ctx, log, ReasonInvalidRequest, codes.InvalidArgument, "missing identity")
	case len(req.GetToken()) == 0:
		return nil, s.refuse(ctx, log, ReasonInvalidRequest, codes.InvalidArgument, "missing token")
	case len(req.GetCsrDer()) == 0:
		return nil, s.refuse(ctx, log, ReasonInvalidRequest, codes.InvalidArgument, "missing certificate signing request")
	}
	if s.cfg.TrustDomain != "" {
		if _, _, err := identity.Parse(name, s.cfg.ControllerNamespace, s.cfg.TrustDomain); err != nil {
			return nil, s.refuse(ctx, log, ReasonInvalidIdentity, codes.InvalidArgument, err.Error())
		}
	}

	csr, err := x509.ParseCertificateRequest(req.GetCsrDer())
	if err != nil {
		return nil, s.refuse(ctx, log, ReasonMalformedCSR, codes.InvalidArgument, fmt.Sprintf("parse certificate signing request: %v", err))
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, s.refuse(ctx, log, ReasonMalformedCSR, codes.InvalidArgument, fmt.Sprintf("certificate signing request signature: %v", err))
	}
	if !pki.IsP256(csr.PublicKey) {
		return nil, s.refuse(ctx, log, ReasonUnsupportedKey, codes.InvalidArgument,
			fmt.Sprintf("certificate signing request key is %s, want ECDSA P-256", csr.PublicKeyAlgorithm))
	}
	if err := checkCSRNames(csr, name); err != nil {
		return nil, s.refuse(ctx, log, ReasonCSRMismatch, codes.FailedPrecondition, err.Error())
	}

	proven, err := s.cfg.Validator.Validate(ctx, req.GetToken())
	switch {
	case errors.Is(err, ErrTokenRejected):
		return nil, s.refuse(ctx, log, ReasonTokenRejected, codes.Unauthenticated, err.Error())
	case err != nil && ctx.Err() != nil:
		return nil, s.refuse(ctx, log, ReasonTokenCheckFailed, status.FromContextError(ctx.Err()).Code(), fmt.Sprintf("validate token: %v", err))
	case err != nil:
		return nil, s.refuse(ctx, log, ReasonTokenCheckFailed, codes.Unavailable, fmt.Sprintf("validate token: %v", err))
	case proven != name:
		return nil, s.refuse(ctx, log, ReasonTokenMismatch, codes.FailedPrecondition,
			fmt.Sprintf("token is for identity %q, not the requested one", proven))
	}

	iss := s.issuer.Load()
	if iss == nil {
		return nil, s.refuse(ctx, log, ReasonNoIssuer, codes.Unavailable, "no issuer certificate loaded")
	}
	leaf, err := iss.ca.SignCSR(csr, s.cfg.IssuanceLifetime, s.cfg.ClockSkewAllowance)
	if err != nil {
		return nil, s.refuse(ctx, log, ReasonSigningFailed, codes.Unavailable, err.Error())
	}
	s.metrics.issued.Inc()
	log.Info("issued certificate", "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "serial", leaf.SerialNumber.Text(16), "issuer_serial", iss.ca.Cert.SerialNumber.Text(16))
	return &identityv1.CertifyResponse{
		LeafDer:  leaf.Raw,
		ChainDer: slices.Clone(iss.chainDER),
		NotAfter: timestamppb.New(leaf.NotAfter),
	}, nil
}

// refuse counts and logs a refusal and returns its gRPC error.
func (s *Server) refuse(ctx context.Context, log *slog.Logger, reason string, code codes.Code, msg string) error {
	s.metrics.refused.WithLabelValues(reason).Inc()
	log.LogAttrs(ctx, slog.LevelWarn, "refused certificate request", slog.String("reason", reason), slog.String("code", code.String()), slog.String("detail", msg))
	return status.Error(code, msg)
}

// checkCSRNames requires the CSR to name exactly the identity: one DNS SAN
// equal to it, no other SAN of any kind, and a common name that is empty or
// equal to it.
func checkCSRNames(csr *x509.CertificateRequest, name string) error {
	switch {
	case len(csr.IPAddresses) > 0:
		return fmt.Errorf("certificate signing request has IP address SANs %v; only the DNS name %q is allowed", csr.IPAddresses, name)
	case len(csr.EmailAddresses) > 0:
		return fmt.Errorf("certificate signing request has e-mail SANs %v; only the DNS name %q is allowed", csr.EmailAddresses, name)
	case len(csr.URIs) > 0:
		return fmt.Errorf("certificate signing request has URI SANs %v; only the DNS name %q is allowed", csr.URIs, name)
	case len(csr.DNSNames) != 1:
		return fmt.Errorf("certificate signing request has DNS SANs %q, want exactly [%q]", csr.DNSNames, name)
	case csr.DNSNames[0] != name:
		return fmt.Errorf("certificate signing request is for %q, not the requested identity %q", csr.DNSNames[0], name)
	case csr.Subject.CommonName != "" && csr.Subject.CommonName != name:
		return fmt.Errorf("certificate signing request common name %q differs from the requested identity %q", csr.Subject.CommonName, name)
	}
	return nil
}
