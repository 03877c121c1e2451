package vizcheck

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd/cli/healthcheck"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// Names of the tap-injector's objects.
const (
	TapInjectorWebhookConfigName = "linkerd-tap-injector-webhook-config"
	TapInjectorTLSSecretName     = "tap-injector-k8s-tls"
)

// tapChecks are the checks of the tap service and the tap-injector.
func (c *Checker) tapChecks() []healthcheck.Check {
	return []healthcheck.Check{
		{
			Description: "tap API service is running",
			HintAnchor:  "l5d-tap-api",
			Retry:       true,
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, _ *healthcheck.State) error {
				pods, err := c.pods(ctx, kube)
				if err != nil {
					return err
				}
				for i := range pods {
					if pods[i].Labels[ComponentLabel] != TapName {
						continue
					}
					if ok, _ := healthcheck.PodReady(&pods[i]); ok {
						return nil
					}
				}
				return fmt.Errorf("no ready %s pod in %s (it is ready once the identity service certified it)", TapName, c.ns)
			}),
		},
		{
			Description: "tap-injector webhook is configured",
			HintAnchor:  "l5d-tap-injector-webhook",
			Run: c.check(func(ctx context.Context, kube kubernetes.Interface, _ *healthcheck.State) error {
				return c.tapInjectorConfigured(ctx, kube, time.Now())
			}),
		},
	}
}

// tapInjectorConfigured checks the webhook configuration: it sends pods to
// the tap-injector Service of the extension, whose serving certificate
// (when the chart manages its Secret) chains to the configured CA bundle
// and is within its validity.
func (c *Checker) tapInjectorConfigured(ctx context.Context, kube kubernetes.Interface, now time.Time) error {
	cfg, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, TapInjectorWebhookConfigName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("no MutatingWebhookConfiguration %s: reinstall the extension (linkerd viz install | kubectl apply -f -)", TapInjectorWebhookConfigName)
	}
	if err != nil {
		return err
	}
	if len(cfg.Webhooks) != 1 {
		return fmt.Errorf("MutatingWebhookConfiguration %s has %d webhooks, want 1", cfg.Name, len(cfg.Webhooks))
	}
	cc := cfg.Webhooks[0].ClientConfig
	if cc.Service == nil || cc.Service.Name != TapInjectorName || cc.Service.Namespace != c.ns {
		return fmt.Errorf("MutatingWebhookConfiguration %s does not send pods to the %s/%s Service", cfg.Name, c.ns, TapInjectorName)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cc.CABundle) {
		return fmt.Errorf("MutatingWebhookConfiguration %s has no CA bundle", cfg.Name)
	}
	secret, err := kube.CoreV1().Secrets(c.ns).Get(ctx, TapInjectorTLSSecretName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("the tap-injector's certificate: %w", err)
	}
	return verifyServingCert(secret, roots, fmt.Sprintf("%s.%s.svc", TapInjectorName, c.ns), now)
}

// verifyServingCert checks a kubernetes.io/tls Secret's certificate for
// the DNS name against roots at now.
func verifyServingCert(secret *corev1.Secret, roots *x509.CertPool, dnsName string, now time.Time) error {
	var certs []*x509.Certificate
	rest := secret.Data[corev1.TLSCertKey]
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("the Secret %s/%s: %w", secret.Namespace, secret.Name, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return fmt.Errorf("the Secret %s/%s holds no certificate", secret.Namespace, secret.Name)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: dnsName, Roots: roots, Intermediates: inter, CurrentTime: now}); err != nil {
		return fmt.Errorf("the tap-injector's certificate (Secret %s/%s) is not valid for the webhook configuration: %w", secret.Namespace, secret.Name, err)
	}
	return nil
}

// tapEnabledCheck warns about meshed data-plane pods whose proxy serves no
// tap (created before the extension), with the command that fixes it.
func (c *Checker) tapEnabledCheck() healthcheck.Check {
	return healthcheck.Check{
		Description: "data plane pods have tap enabled",
		HintAnchor:  "l5d-viz-data-plane-tap",
		Warning:     true,
		Run: c.check(func(ctx context.Context, kube kubernetes.Interface, s *healthcheck.State) error {
			list, err := kube.CoreV1().Pods(s.DataPlaneNamespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return fmt.Errorf("listing pods: %w", err)
			}
			var off []string
			for i := range list.Items {
				p := &list.Items[i]
				proxy := k8s.ProxyContainer(p)
				if proxy == nil || p.Namespace == c.ns || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
					continue
				}
				if !hasEnv(proxy, proxyenv.TapSvcName) {
					off = append(off, p.Namespace+"/"+p.Name)
				}
			}
			if len(off) == 0 {
				return nil
			}
			sort.Strings(off)
			return errors.New("tap not enabled on pods created before linkerd-viz: " + strings.Join(off, ", ") + "; restart them (kubectl rollout restart deploy -n NAMESPACE)")
		}),
	}
}

func hasEnv(c *corev1.Container, name string) bool {
	for _, e := range c.Env {
		if e.Name == name && e.Value != "" {
			return true
		}
	}
	return false
}
