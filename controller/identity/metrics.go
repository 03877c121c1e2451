package identity

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a Certify call is refused: the values of the reason label of
// identity_cert_refused_total.
const (
	ReasonInvalidRequest   = "invalid_request"    // missing identity, token or CSR
	ReasonInvalidIdentity  = "invalid_identity"   // not an identity name of this mesh
	ReasonMalformedCSR     = "malformed_csr"      // unparseable or badly signed CSR
	ReasonUnsupportedKey   = "unsupported_key"    // CSR key is not ECDSA P-256
	ReasonCSRMismatch      = "csr_mismatch"       // CSR names differ from the identity
	ReasonTokenRejected    = "token_rejected"     // the validator rejected the token
	ReasonTokenMismatch    = "token_mismatch"     // the token proves another identity
	ReasonTokenCheckFailed = "token_check_failed" // the validator could not decide
	ReasonNoIssuer         = "no_issuer"          // no issuer loaded yet
	ReasonSigningFailed    = "signing_failed"     // the issuer could not sign
)

var refusalReasons = []string{
	ReasonInvalidRequest, ReasonInvalidIdentity, ReasonMalformedCSR, ReasonUnsupportedKey,
	ReasonCSRMismatch, ReasonTokenRejected, ReasonTokenMismatch, ReasonTokenCheckFailed,
	ReasonNoIssuer, ReasonSigningFailed,
}

// Values of the result label of identity_issuer_reload_total.
const (
	ReloadSuccess = "success"
	ReloadFailure = "failure"
)

// Metrics are the identity service's Prometheus metrics.
type Metrics struct {
	issued       prometheus.Counter
	refused      *prometheus.CounterVec
	issuerExpiry prometheus.Gauge
	reloads      *prometheus.CounterVec
}

// NewMetrics creates the identity metrics and registers them with reg
// (when reg is not nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "identity_cert_issued_total",
			Help: "Leaf certificates issued.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "identity_cert_refused_total",
			Help: "Certify requests refused, by reason.",
		}, []string{"reason"}),
		issuerExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "identity_issuer_expiry_timestamp_seconds",
			Help: "When the loaded issuer certificate expires, in seconds since the Unix epoch (0 when none is loaded).",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "identity_issuer_reload_total",
			Help: "Attempts to load changed issuer material, by result.",
		}, []string{"result"}),
	}
	for _, r := range refusalReasons {
		m.refused.WithLabelValues(r)
	}
	m.reloads.WithLabelValues(ReloadSuccess)
	m.reloads.WithLabelValues(ReloadFailure)
	if reg != nil {
		for _, c := range []prometheus.Collector{m.issued, m.refused, m.issuerExpiry, m.reloads} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register identity metrics: %w", err)
			}
		}
	}
	return m, nil
}

// newUnregisteredMetrics returns metrics that no registry exports.
func newUnregisteredMetrics() *Metrics {
	m, _ := NewMetrics(nil) // cannot fail without a registry
	return m
}
