// Package identity builds and parses mesh identity names.
//
// A workload's identity is derived from its Kubernetes ServiceAccount:
//
//	<sa>.<ns>.serviceaccount.identity.<control-ns>.<trust-domain>
//
// for example "web.emojivoto.serviceaccount.identity.linkerd.cluster.local".
// The identity is the single DNS SAN of the workload's certificate.
package identity

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidName is wrapped by every error Parse and ValidateLabel return.
var ErrInvalidName = errors.New("invalid identity name")

// Issuer Secret layouts: the identity service's -identity-scheme and the
// charts' identity.issuer.scheme values.
const (
	// IssuerSchemeLinkerd is Linkerd's own issuer Secret
	// (linkerd-identity-issuer), rendered by the install: crt.pem and key.pem.
	IssuerSchemeLinkerd = "linkerd.io/tls"
	// IssuerSchemeKubernetes is a kubernetes.io/tls Secret managed outside
	// Linkerd, e.g. by cert-manager: tls.crt and tls.key.
	IssuerSchemeKubernetes = "kubernetes.io/tls"
)

const (
	// serviceAccountInfix separates the workload part of a name from the
	// control-plane part.
	serviceAccountInfix = ".serviceaccount.identity."

	maxLabelLen = 63
	maxNameLen  = 253
)

// Name returns the identity of ServiceAccount sa in namespace ns, for a
// control plane running in controlPlaneNS with trust domain trustDomain.
// It does not validate its inputs; use Parse on the result to do so.
func Name(serviceAccount, namespace, controlPlaneNS, trustDomain string) string {
	return serviceAccount + "." + namespace + serviceAccountInfix + controlPlaneNS + "." + trustDomain
}

// IssuerName returns the common name of the identity issuer certificate,
// "identity.<control-ns>.<trust-domain>" (e.g. identity.linkerd.cluster.local).
// It is also the identity the proxies expect the identity service to have.
func IssuerName(controlPlaneNS, trustDomain string) string {
	return "identity." + controlPlaneNS + "." + trustDomain
}

// TrustAnchorName returns a conventional common name for the mesh's trust
// anchor, "root.<control-ns>.<trust-domain>".
func TrustAnchorName(controlPlaneNS, trustDomain string) string {
	return "root." + controlPlaneNS + "." + trustDomain
}

// Parse splits an identity name into its ServiceAccount and namespace. The
// name must end in the suffix for controlPlaneNS and trustDomain, and both
// parts must be DNS-1123 labels. Errors wrap ErrInvalidName.
func Parse(name, controlPlaneNS, trustDomain string) (serviceAccount, namespace string, err error) {
	if len(name) > maxNameLen {
		return "", "", fmt.Errorf("%w: %d characters is longer than %d", ErrInvalidName, len(name), maxNameLen)
	}
	if err := ValidateLabel(controlPlaneNS); err != nil {
		return "", "", fmt.Errorf("control-plane namespace: %w", err)
	}
	if err := ValidateDomain(trustDomain); err != nil {
		return "", "", fmt.Errorf("trust domain: %w", err)
	}
	suffix := serviceAccountInfix + controlPlaneNS + "." + trustDomain
	workload, ok := strings.CutSuffix(name, suffix)
	if !ok {
		return "", "", fmt.Errorf("%w: %q does not end in %q", ErrInvalidName, name, suffix)
	}
	sa, ns, ok := strings.Cut(workload, ".")
	if !ok {
		return "", "", fmt.Errorf("%w: %q has no namespace", ErrInvalidName, name)
	}
	if err := ValidateLabel(sa); err != nil {
		return "", "", fmt.Errorf("service account: %w", err)
	}
	if err := ValidateLabel(ns); err != nil {
		return "", "", fmt.Errorf("namespace: %w", err)
	}
	return sa, ns, nil
}

// ValidateLabel reports whether s is a DNS-1123 label: 1 to 63 lowercase
// letters, digits and '-', starting and ending with a letter or digit.
// Errors wrap ErrInvalidName.
func ValidateLabel(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty label", ErrInvalidName)
	}
	if len(s) > maxLabelLen {
		return fmt.Errorf("%w: label %q is longer than %d characters", ErrInvalidName, s, maxLabelLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return fmt.Errorf("%w: label %q: character %q at position %d not allowed", ErrInvalidName, s, c, i)
		}
	}
	return nil
}

// ValidateDomain reports whether s is a dot-separated sequence of DNS-1123
// labels, such as a trust domain ("cluster.local"). Errors wrap
// ErrInvalidName.
func ValidateDomain(s string) error {
	if len(s) > maxNameLen {
		return fmt.Errorf("%w: domain %q is longer than %d characters", ErrInvalidName, s, maxNameLen)
	}
	for label := range strings.SplitSeq(s, ".") {
		if err := ValidateLabel(label); err != nil {
			return fmt.Errorf("domain %q: %w", s, err)
		}
	}
	return nil
}
