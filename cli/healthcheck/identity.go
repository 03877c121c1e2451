package healthcheck

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/pki"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Keys of the certificate and key in the issuer and webhook secrets, by scheme.
const (
	linkerdCertKey = "crt.pem"
	linkerdKeyKey  = "key.pem"
	tlsCertKey     = corev1.TLSCertKey // "tls.crt"
	tlsKeyKey      = corev1.TLSPrivateKeyKey
)

// identityMaterial is what "certificate config is valid" loaded.
type identityMaterial struct {
	anchors     []*x509.Certificate
	issuerChain []*x509.Certificate
}

func linkerdIdentityCategory() Category { return identityCategory(loadIdentity) }

// identityCategory is linkerd-identity's checks over the material load
// finds (and stores in s.idm): a cluster's, or a local mesh's.
func identityCategory(load func(context.Context, *State) error) Category {
	// fromPKI turns one of pki.Check's results into a check.
	fromPKI := func(id, desc, anchor string, warning bool) Check {
		return Check{
			Description: desc,
			HintAnchor:  anchor,
			Warning:     warning,
			Run: func(_ context.Context, s *State) error {
				m, err := s.identity()
				if err != nil {
					return err
				}
				for _, r := range pki.Check(m.anchors, m.issuerChain, pki.CheckOptions{Now: s.now()}) {
					if r.ID == id && r.Status != pki.StatusOK {
						return errors.New(r.Message)
					}
				}
				return nil
			},
		}
	}
	return Category{ID: LinkerdIdentity, Checks: []Check{
		{
			Description: "certificate config is valid",
			HintAnchor:  "l5d-identity-cert-config-valid",
			Fatal:       true,
			Run:         load,
		},
		fromPKI(pki.CheckAnchorsAlgorithm, "trust anchors are using supported crypto algorithm", "l5d-identity-trustAnchors-use-supported-crypto", false),
		fromPKI(pki.CheckAnchorsValidity, "trust anchors are within their validity period", "l5d-identity-trustAnchors-are-time-valid", false),
		fromPKI(pki.CheckAnchorsMinValidity, "trust anchors are valid for at least 60 days", "l5d-identity-trustAnchors-not-expiring-soon", true),
		fromPKI(pki.CheckIssuerAlgorithm, "issuer cert is using supported crypto algorithm", "l5d-identity-issuer-cert-uses-supported-crypto", false),
		fromPKI(pki.CheckIssuerValidity, "issuer cert is within its validity period", "l5d-identity-issuer-cert-is-time-valid", false),
		fromPKI(pki.CheckIssuerMinValidity, "issuer cert is valid for at least 60 days", "l5d-identity-issuer-cert-not-expiring-soon", true),
		fromPKI(pki.CheckIssuerSignedByAnchor, "issuer cert is issued by the trust anchor", "l5d-identity-issuer-cert-issued-by-trust-anchor", false),
	}}
}

func (s *State) identity() (*identityMaterial, error) {
	if s.idm == nil {
		return nil, errors.New("the identity configuration was not loaded")
	}
	return s.idm, nil
}

// loadIdentity reads the trust anchors (ConfigMap
// linkerd-identity-trust-roots) and the issuer's certificate and key
// (Secret linkerd-identity-issuer): they must parse and the key must match
// the certificate. Algorithms and dates are the following checks' business.
func loadIdentity(ctx context.Context, s *State) error {
	kube, err := s.client()
	if err != nil {
		return err
	}
	ns := s.ControlPlaneNamespace
	anchors, err := s.trustAnchors(ctx)
	if err != nil {
		return err
	}

	secret, err := kube.CoreV1().Secrets(ns).Get(ctx, k8s.IssuerSecretName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the issuer Secret %s/%s: %w", ns, k8s.IssuerSecretName, err)
	}
	certKey, keyKey := linkerdCertKey, linkerdKeyKey
	if s.values != nil && s.values.Identity.Issuer.Scheme == identity.IssuerSchemeKubernetes || secret.Type == corev1.SecretTypeTLS {
		certKey, keyKey = tlsCertKey, tlsKeyKey
	}
	certPEM, keyPEM := secret.Data[certKey], secret.Data[keyKey]
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return fmt.Errorf("the issuer Secret %s/%s must hold %q and %q", ns, k8s.IssuerSecretName, certKey, keyKey)
	}
	where := fmt.Sprintf("Secret %s/%s", ns, k8s.IssuerSecretName)
	chain, err := parseIssuer(certPEM, keyPEM, where+", key "+certKey, where+", key "+keyKey)
	if err != nil {
		return err
	}
	s.idm = &identityMaterial{anchors: anchors, issuerChain: chain}
	return nil
}

// parseIssuer parses an issuer's certificate chain and key (found where
// certAt and keyAt say): they must parse, the key must match the
// certificate, and the certificate must be a CA's.
func parseIssuer(certPEM, keyPEM []byte, certAt, keyAt string) ([]*x509.Certificate, error) {
	chain, err := pki.DecodeCertificatesPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("the issuer certificate (%s): %w", certAt, err)
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the issuer key (%s): %w", keyAt, err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("the issuer key (%s) does not match its certificate", keyAt)
	}
	if !chain[0].IsCA {
		return nil, fmt.Errorf("the issuer certificate %q is not a CA certificate", chain[0].Subject.CommonName)
	}
	return chain, nil
}

// trustAnchors reads the trust anchors the identity service and the proxies use.
func (s *State) trustAnchors(ctx context.Context) ([]*x509.Certificate, error) {
	bundle, err := s.trustAnchorsPEM(ctx)
	if err != nil {
		return nil, err
	}
	anchors, err := pki.DecodeCertificatesPEM([]byte(bundle))
	if err != nil {
		return nil, fmt.Errorf("the trust anchors (ConfigMap %s/%s, key %s): %w", s.ControlPlaneNamespace, k8s.TrustRootsConfigMapName, k8s.TrustRootsKey, err)
	}
	return anchors, nil
}

func (s *State) trustAnchorsPEM(ctx context.Context) (string, error) {
	kube, err := s.client()
	if err != nil {
		return "", err
	}
	ns := s.ControlPlaneNamespace
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, k8s.TrustRootsConfigMapName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading the trust anchors ConfigMap %s/%s: %w", ns, k8s.TrustRootsConfigMapName, err)
	}
	bundle, ok := cm.Data[k8s.TrustRootsKey]
	if !ok {
		return "", fmt.Errorf("the ConfigMap %s/%s has no %q key", ns, k8s.TrustRootsConfigMapName, k8s.TrustRootsKey)
	}
	return bundle, nil
}

// parsePrivateKey parses a PEM private key of any type (PKCS#8, SEC 1 or
// PKCS#1), so that a key of an unsupported algorithm is reported by the
// algorithm checks rather than as unparsable.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue // e.g. "EC PARAMETERS" before the key
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
		return signer, nil
	}
}

// webhook is an admission webhook of the control plane and its serving certificate.
type webhook struct {
	// Name is the webhook's name in check descriptions ("proxy-injector").
	Name string
	// Secret holds the serving certificate.
	Secret string
	// Service is the webhook's Service: the certificate must be valid for
	// <Service>.<namespace>.svc.
	Service string
	// Config is the webhook configuration whose caBundle must verify the certificate.
	Config   string
	Mutating bool
	// Optional webhooks are checked only when installed (their Secret or
	// configuration exists).
	Optional bool
}

var webhooks = []webhook{
	{Name: "proxy-injector", Secret: k8s.ProxyInjectorTLSSecretName, Service: k8s.ProxyInjectorServiceName, Config: k8s.ProxyInjectorWebhookConfigName, Mutating: true},
	{Name: "sp-validator", Secret: k8s.SPValidatorTLSSecretName, Service: k8s.SPValidatorServiceName, Config: k8s.SPValidatorWebhookConfigName, Optional: true},
	{Name: "policy-validator", Secret: k8s.PolicyValidatorTLSSecretName, Service: k8s.PolicyValidatorServiceName, Config: k8s.PolicyValidatorWebhookConfigName},
}

// webhookInstalled reports whether an optional webhook's Secret or
// configuration exists; required webhooks are always installed.
func (s *State) webhookInstalled(ctx context.Context, w webhook) (bool, error) {
	if !w.Optional {
		return true, nil
	}
	kube, err := s.client()
	if err != nil {
		return false, err
	}
	_, err = kube.CoreV1().Secrets(s.ControlPlaneNamespace).Get(ctx, w.Secret, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		return err == nil, err
	}
	if w.Mutating {
		_, err = kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, w.Config, metav1.GetOptions{})
	} else {
		_, err = kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, w.Config, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

func linkerdWebhooksCategory() Category {
	var checks []Check
	for _, w := range webhooks {
		checks = append(checks,
			Check{
				Description: w.Name + " webhook has valid cert",
				HintAnchor:  "l5d-" + w.Name + "-webhook-cert-valid",
				Run: func(ctx context.Context, s *State) error {
					if ok, err := s.webhookInstalled(ctx, w); err != nil || !ok {
						return skipOr(err, w.Name+" not installed")
					}
					_, err := s.checkWebhookCert(ctx, w)
					return err
				},
			},
			Check{
				Description: w.Name + " cert is valid for at least 60 days",
				HintAnchor:  "l5d-" + w.Name + "-webhook-cert-not-expiring-soon",
				Warning:     true,
				Run: func(ctx context.Context, s *State) error {
					if ok, err := s.webhookInstalled(ctx, w); err != nil || !ok {
						return skipOr(err, w.Name+" not installed")
					}
					chain, err := s.webhookCert(ctx, w)
					if err != nil {
						return Skip("no certificate") // reported by the previous check
					}
					cert := chain[0]
					if left := cert.NotAfter.Sub(s.now()); left < pki.DefaultMinValidity {
						return fmt.Errorf("the certificate in Secret %s/%s expires at %s: renew it (re-run linkerd install or upgrade, or renew it with your certificate manager)", s.ControlPlaneNamespace, w.Secret, cert.NotAfter.UTC().Format(time.RFC3339))
					}
					return nil
				},
			},
		)
	}
	return Category{ID: LinkerdWebhooksTLS, Checks: checks}
}

// webhookCert reads the webhook's serving certificate, followed by any
// intermediates, from its Secret.
func (s *State) webhookCert(ctx context.Context, w webhook) ([]*x509.Certificate, error) {
	kube, err := s.client()
	if err != nil {
		return nil, err
	}
	ns := s.ControlPlaneNamespace
	secret, err := kube.CoreV1().Secrets(ns).Get(ctx, w.Secret, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s/%s: %w", ns, w.Secret, err)
	}
	data := secret.Data[tlsCertKey]
	if len(data) == 0 {
		data = secret.Data[linkerdCertKey]
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("the Secret %s/%s has no %q", ns, w.Secret, tlsCertKey)
	}
	certs, err := pki.DecodeCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("the certificate in Secret %s/%s: %w", ns, w.Secret, err)
	}
	return certs, nil
}

// skipOr returns err, or when nil a *SkipError with reason.
func skipOr(err error, reason string) error {
	if err != nil {
		return err
	}
	return Skip(reason)
}

// checkWebhookCert checks that the webhook's certificate is within its
// validity period, names the webhook's Service, and is trusted by the
// caBundle the API server uses to call each webhook of the configuration.
func (s *State) checkWebhookCert(ctx context.Context, w webhook) (*x509.Certificate, error) {
	chain, err := s.webhookCert(ctx, w)
	if err != nil {
		return nil, err
	}
	cert := chain[0]
	now := s.now()
	switch {
	case now.Before(cert.NotBefore):
		return nil, fmt.Errorf("the certificate in Secret %s is not valid before %s", w.Secret, cert.NotBefore.UTC().Format(time.RFC3339))
	case now.After(cert.NotAfter):
		return nil, fmt.Errorf("the certificate in Secret %s expired at %s: renew it (re-run linkerd install or upgrade)", w.Secret, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	host := w.Service + "." + s.ControlPlaneNamespace + ".svc"
	if err := cert.VerifyHostname(host); err != nil {
		return nil, fmt.Errorf("the certificate in Secret %s is not valid for %s (its names: %s)", w.Secret, host, strings.Join(cert.DNSNames, ", "))
	}

	bundles, err := s.webhookCABundles(ctx, w)
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(bundles))
	for _, name := range names {
		bundle := bundles[name]
		if len(bundle) == 0 {
			return nil, fmt.Errorf("webhook %s in %s has no caBundle: the API server cannot verify it", name, w.Config)
		}
		cas, err := pki.DecodeCertificatesPEM(bundle)
		if err != nil {
			return nil, fmt.Errorf("the caBundle of webhook %s in %s: %w", name, w.Config, err)
		}
		if slices.ContainsFunc(cas, func(c *x509.Certificate) bool { return pki.SameCertificate(c, cert) }) {
			continue
		}
		if err := pki.VerifyChainAt(cert, chain[1:], cas, now); err != nil {
			return nil, fmt.Errorf("the caBundle of webhook %s in %s does not match the certificate in Secret %s: %w", name, w.Config, w.Secret, err)
		}
	}
	return cert, nil
}

// webhookCABundles returns the caBundle of each webhook of w's configuration.
func (s *State) webhookCABundles(ctx context.Context, w webhook) (map[string][]byte, error) {
	kube, err := s.client()
	if err != nil {
		return nil, err
	}
	bundles := map[string][]byte{}
	if w.Mutating {
		cfg, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, w.Config, metav1.GetOptions{})
		if err != nil {
			return nil, webhookConfigErr(w, err)
		}
		for _, h := range cfg.Webhooks {
			bundles[h.Name] = h.ClientConfig.CABundle
		}
	} else {
		cfg, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, w.Config, metav1.GetOptions{})
		if err != nil {
			return nil, webhookConfigErr(w, err)
		}
		for _, h := range cfg.Webhooks {
			bundles[h.Name] = h.ClientConfig.CABundle
		}
	}
	if len(bundles) == 0 {
		return nil, fmt.Errorf("the webhook configuration %s has no webhooks", w.Config)
	}
	return bundles, nil
}

func webhookConfigErr(w webhook, err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("the webhook configuration %s does not exist", w.Config)
	}
	return fmt.Errorf("reading the webhook configuration %s: %w", w.Config, err)
}
