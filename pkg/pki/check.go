package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"strings"
	"time"
)

// DefaultMinValidity is how long Check wants certificates to remain valid
// before it warns.
const DefaultMinValidity = 60 * 24 * time.Hour

// Status is the outcome of one check.
type Status int

// Check outcomes, from best to worst.
const (
	StatusOK Status = iota
	StatusWarning
	StatusError
)

// String returns "ok", "warning" or "error".
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusWarning:
		return "warning"
	case StatusError:
		return "error"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// IDs of the checks Check runs, in the order it returns them.
const (
	CheckAnchorsAlgorithm     = "anchors-algorithm"
	CheckAnchorsValidity      = "anchors-validity"
	CheckAnchorsMinValidity   = "anchors-min-validity"
	CheckIssuerAlgorithm      = "issuer-algorithm"
	CheckIssuerValidity       = "issuer-validity"
	CheckIssuerMinValidity    = "issuer-min-validity"
	CheckIssuerSignedByAnchor = "issuer-signed-by-anchor"
)

// CheckResult is the outcome of one check.
type CheckResult struct {
	// ID identifies the check; one of the Check* constants.
	ID string
	// Description says what was checked, for display.
	Description string
	// Status is the outcome.
	Status Status
	// Message explains a warning or error; empty when Status is StatusOK.
	Message string
}

// CheckOptions tunes Check.
type CheckOptions struct {
	// Now is the time to check at; zero means time.Now().
	Now time.Time
	// MinValidity is how long certificates should remain valid before a
	// warning; zero means DefaultMinValidity.
	MinValidity time.Duration
}

// Check inspects the mesh's trust anchors and issuer certificate chain
// (issuerChain[0] is the issuer, followed by any intermediates) and returns
// one result per check, in a fixed order: for the anchors, then for the
// issuer, the key algorithm (ECDSA P-256), the validity window, and whether
// they stay valid for at least MinValidity (a warning otherwise); finally,
// whether the issuer is signed, possibly through the intermediates, by one
// of the anchors.
func Check(anchors, issuerChain []*x509.Certificate, opts CheckOptions) []CheckResult {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	minValidity := opts.MinValidity
	if minValidity == 0 {
		minValidity = DefaultMinValidity
	}
	days := fmt.Sprintf("%d days", int(minValidity/(24*time.Hour)))
	if minValidity%(24*time.Hour) != 0 {
		days = minValidity.String()
	}
	return []CheckResult{
		checkEach(CheckAnchorsAlgorithm, "trust anchors use ECDSA P-256", "trust anchors", anchors, StatusError, checkAlgorithm),
		checkEach(CheckAnchorsValidity, "trust anchors are within their validity period", "trust anchors", anchors, StatusError, checkWindow(now)),
		checkEach(CheckAnchorsMinValidity, "trust anchors remain valid for at least "+days, "trust anchors", anchors, StatusWarning, checkRemaining(now, minValidity)),
		checkEach(CheckIssuerAlgorithm, "issuer certificate uses ECDSA P-256", "issuer certificate", issuerChain, StatusError, checkAlgorithm),
		checkEach(CheckIssuerValidity, "issuer certificate is within its validity period", "issuer certificate", issuerChain, StatusError, checkWindow(now)),
		checkEach(CheckIssuerMinValidity, "issuer certificate remains valid for at least "+days, "issuer certificate", issuerChain, StatusWarning, checkRemaining(now, minValidity)),
		checkSignedByAnchor(anchors, issuerChain),
	}
}

// Worst returns the worst status among results (StatusOK for none).
func Worst(results []CheckResult) Status {
	worst := StatusOK
	for _, r := range results {
		worst = max(worst, r.Status)
	}
	return worst
}

// checkEach runs fn on every certificate and fails with status if any
// certificate fails, listing their problems.
func checkEach(id, desc, what string, certs []*x509.Certificate, status Status, fn func(*x509.Certificate) string) CheckResult {
	r := CheckResult{ID: id, Description: desc}
	if len(certs) == 0 {
		r.Status = StatusError
		r.Message = "no " + what + " found"
		return r
	}
	var problems []string
	for _, c := range certs {
		if p := fn(c); p != "" {
			problems = append(problems, fmt.Sprintf("%s: %s", describe(c), p))
		}
	}
	if len(problems) > 0 {
		r.Status = status
		r.Message = strings.Join(problems, "; ")
	}
	return r
}

func checkAlgorithm(c *x509.Certificate) string {
	if !IsP256(c.PublicKey) {
		return fmt.Sprintf("public key is %s, want ECDSA P-256", keyDescription(c))
	}
	if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		return fmt.Sprintf("signature algorithm is %s, want %s", c.SignatureAlgorithm, x509.ECDSAWithSHA256)
	}
	return ""
}

func checkWindow(now time.Time) func(*x509.Certificate) string {
	return func(c *x509.Certificate) string {
		switch {
		case now.Before(c.NotBefore):
			return "not valid before " + c.NotBefore.UTC().Format(time.RFC3339)
		case now.After(c.NotAfter):
			return "expired at " + c.NotAfter.UTC().Format(time.RFC3339)
		}
		return ""
	}
}

func checkRemaining(now time.Time, minValidity time.Duration) func(*x509.Certificate) string {
	return func(c *x509.Certificate) string {
		if c.NotAfter.Sub(now) < minValidity {
			return "expires at " + c.NotAfter.UTC().Format(time.RFC3339)
		}
		return ""
	}
}

// checkSignedByAnchor follows signatures (not validity dates) from the
// issuer through its intermediates until one is signed by an anchor.
func checkSignedByAnchor(anchors, issuerChain []*x509.Certificate) CheckResult {
	r := CheckResult{ID: CheckIssuerSignedByAnchor, Description: "issuer certificate is signed by a trust anchor", Status: StatusError}
	switch {
	case len(issuerChain) == 0:
		r.Message = "no issuer certificate found"
		return r
	case len(anchors) == 0:
		r.Message = "no trust anchors found"
		return r
	}
	for i, c := range issuerChain {
		for _, a := range anchors {
			if c.CheckSignatureFrom(a) == nil {
				r.Status = StatusOK
				return r
			}
		}
		if i+1 == len(issuerChain) {
			break
		}
		if err := c.CheckSignatureFrom(issuerChain[i+1]); err != nil {
			r.Message = fmt.Sprintf("%s is not signed by the next certificate in the issuer chain, %s: %v", describe(c), describe(issuerChain[i+1]), err)
			return r
		}
	}
	r.Message = fmt.Sprintf("%s is not signed by any of the %d trust anchors", describe(issuerChain[0]), len(anchors))
	return r
}

func describe(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("%q", c.Subject.CommonName)
	}
	return "serial " + c.SerialNumber.String()
}

func keyDescription(c *x509.Certificate) string {
	if k, ok := c.PublicKey.(*ecdsa.PublicKey); ok {
		return "ECDSA " + k.Curve.Params().Name
	}
	return c.PublicKeyAlgorithm.String()
}
