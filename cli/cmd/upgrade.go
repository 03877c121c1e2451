package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/charts/chartvalues"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

func newCmdUpgrade(global *GlobalOptions, _ Env) *cobra.Command {
	opts := &renderOptions{}
	cmd := &cobra.Command{
		Use:   "upgrade [flags]",
		Short: "Output Kubernetes manifests to upgrade an existing Linkerd control plane",
		Long: `Output Kubernetes manifests to upgrade an existing Linkerd control plane.

The installation's values (ConfigMap linkerd-config) are read from the
cluster and rendered with this CLI's chart; --ha, --set, --set-string and -f
change them. The identity issuer, trust anchors and webhook certificates in
the cluster are kept unless --identity-* files replace them. Upgrade the CRDs
first when the release notes say so:

  linkerd upgrade --crds | kubectl apply -f -
  linkerd upgrade | kubectl apply -f -`,
		Example: `  linkerd upgrade | kubectl apply -f -
  linkerd upgrade --ha | kubectl apply -f -
  linkerd upgrade --set controllerLogLevel=debug | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			return runUpgrade(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), global, opts)
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func runUpgrade(ctx context.Context, stdout, stderr io.Writer, global *GlobalOptions, opts *renderOptions) error {
	ns := global.LinkerdNamespace
	if opts.crds {
		docs, err := renderInstall(opts, ns, nil, stderr)
		if err != nil {
			return err
		}
		return writeManifests(stdout, docs, opts.output)
	}
	kube, err := newKubeClient(global)
	if err != nil {
		return err
	}
	stored, err := installedValues(ctx, kube, ns)
	if errors.Is(err, errNotInstalled) {
		return fmt.Errorf("%w: run `linkerd install` first", err)
	}
	if err != nil {
		return err
	}
	if err := reuseSecrets(ctx, kube, ns, stored, opts); err != nil {
		return err
	}
	docs, err := renderInstall(opts, ns, stored, stderr)
	if err != nil {
		return err
	}
	return writeManifests(stdout, docs, opts.output)
}

// errNotInstalled is returned when the control plane's linkerd-config
// ConfigMap does not exist.
var errNotInstalled = errors.New("linkerd is not installed")

// installedValues reads the values of the installation in ns from its
// linkerd-config ConfigMap.
func installedValues(ctx context.Context, kube kubernetes.Interface, ns string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterCheckTimeout)
	defer cancel()
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, k8s.ConfigMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w in the %s namespace (no ConfigMap %s)", errNotInstalled, ns, k8s.ConfigMapName)
	}
	if err != nil {
		return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", ns, k8s.ConfigMapName, err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(cm.Data[k8s.ConfigValuesKey]), &vals); err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: key %q: %w", ns, k8s.ConfigMapName, k8s.ConfigValuesKey, err)
	}
	return vals, nil
}

// reuseSecrets puts the cluster's issuer certificate and key, trust anchors
// and webhook certificate into stored (the ConfigMap holds no private keys),
// so that an upgrade keeps them. The --identity-* files, when given, win.
func reuseSecrets(ctx context.Context, kube kubernetes.Interface, ns string, stored map[string]any, opts *renderOptions) error {
	ctx, cancel := context.WithTimeout(ctx, clusterCheckTimeout)
	defer cancel()
	getSecret := func(name string) (*corev1.Secret, error) {
		s, err := kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading Secret %s/%s: %w", ns, name, err)
		}
		return s, nil
	}

	if chartvalues.String(stored, "identityTrustAnchorsPEM") == "" {
		cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, k8s.TrustRootsConfigMapName, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading ConfigMap %s/%s: %w", ns, k8s.TrustRootsConfigMapName, err)
		}
		if err == nil {
			chartvalues.Set(stored, "identityTrustAnchorsPEM", cm.Data[k8s.TrustRootsKey])
		}
	}

	scheme := chartvalues.String(stored, "identity.issuer.scheme")
	if opts.issuerCert == "" && (scheme == "" || scheme == identity.IssuerSchemeLinkerd) {
		s, err := getSecret(k8s.IssuerSecretName)
		if err != nil {
			return err
		}
		if s == nil {
			return fmt.Errorf("the identity issuer Secret %s/%s is missing: give the issuer with --identity-issuer-certificate-file, --identity-issuer-key-file and --identity-trust-anchors-file", ns, k8s.IssuerSecretName)
		}
		chartvalues.Set(stored, "identity.issuer.tls.crtPEM", string(s.Data[k8s.IssuerCertKey]))
		chartvalues.Set(stored, "identity.issuer.tls.keyPEM", string(s.Data[k8s.IssuerKeyKey]))
	}

	for _, w := range webhookTLSs {
		prefix := w.values + "."
		if chartvalues.Bool(stored, prefix+"externalSecret") {
			continue
		}
		s, err := getSecret(w.secret)
		if err != nil {
			return err
		}
		if s == nil || chartvalues.String(stored, prefix+"caBundle") == "" {
			// Generate a new certificate and CA bundle together.
			chartvalues.Set(stored, prefix+"crtPEM", "")
			chartvalues.Set(stored, prefix+"keyPEM", "")
			chartvalues.Set(stored, prefix+"caBundle", "")
		} else {
			chartvalues.Set(stored, prefix+"crtPEM", string(s.Data[corev1.TLSCertKey]))
			chartvalues.Set(stored, prefix+"keyPEM", string(s.Data[corev1.TLSPrivateKeyKey]))
		}
	}
	return nil
}
