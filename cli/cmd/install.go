package cmd

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/strvals"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/charts"
	"github.com/linkerd-go/linkerd/charts/chartvalues"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/pki"
	"github.com/linkerd-go/linkerd/pkg/version"
)

// clusterCheckTimeout bounds the API requests install, upgrade and
// uninstall make before rendering.
const clusterCheckTimeout = 30 * time.Second

// renderOptions are the flags install and upgrade share: what to render and
// the values to render it with.
type renderOptions struct {
	crds          bool
	ha            bool
	valueFiles    []string
	setValues     []string
	setStrings    []string
	trustAnchors  string
	issuerCert    string
	issuerKey     string
	trustDomain   string
	clusterDomain string
	output        string
}

func (o *renderOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.crds, "crds", false, "render the CustomResourceDefinitions (install them before the control plane)")
	f.BoolVar(&o.ha, "ha", false, "render a highly available control plane (the chart's values-ha.yaml: 3 replicas, anti-affinity, PodDisruptionBudgets, webhooks that fail closed)")
	f.StringArrayVar(&o.setValues, "set", nil, "set a chart value (key=value, key.sub=value, list={a,b}); repeatable")
	f.StringArrayVar(&o.setStrings, "set-string", nil, "set a chart value as a string; repeatable")
	f.StringArrayVarP(&o.valueFiles, "values", "f", nil, "a YAML file of chart values; repeatable, later files win")
	f.StringVar(&o.trustAnchors, "identity-trust-anchors-file", "", "PEM file of the trust anchors (generated with the issuer when not given)")
	f.StringVar(&o.issuerCert, "identity-issuer-certificate-file", "", "PEM file of the identity issuer certificate, signed by a trust anchor")
	f.StringVar(&o.issuerKey, "identity-issuer-key-file", "", "PEM file of the identity issuer's private key (ECDSA P-256)")
	f.StringVar(&o.trustDomain, "identity-trust-domain", "", "trust domain of the mesh's identities (default: the cluster domain)")
	f.StringVar(&o.clusterDomain, "cluster-domain", "", "Kubernetes cluster domain (default cluster.local)")
	f.StringVarP(&o.output, "output", "o", "yaml", "output format: yaml or json")
}

func (o *renderOptions) validate() error {
	if o.output != "yaml" && o.output != "json" {
		return fmt.Errorf("--output must be yaml or json, not %q", o.output)
	}
	if (o.issuerCert == "") != (o.issuerKey == "") {
		return errors.New("--identity-issuer-certificate-file and --identity-issuer-key-file must be given together")
	}
	if o.issuerCert != "" && o.trustAnchors == "" {
		return errors.New("--identity-issuer-certificate-file needs --identity-trust-anchors-file: the anchors that signed the issuer")
	}
	return nil
}

type installOptions struct {
	renderOptions
	ignoreCluster bool
}

func newCmdInstall(global *GlobalOptions, _ Env) *cobra.Command {
	opts := &installOptions{}
	cmd := &cobra.Command{
		Use:   "install [flags]",
		Short: "Output Kubernetes manifests to install the Linkerd control plane",
		Long: `Output Kubernetes manifests to install the Linkerd control plane.

Install the CustomResourceDefinitions first, then the control plane:

  linkerd install --crds | kubectl apply -f -
  linkerd install | kubectl apply -f -

The manifests come from the linkerd-control-plane Helm chart built into the
CLI; --set, --set-string and -f change its values as with Helm. Without
--identity-* files, a trust anchor and an identity issuer are generated.
Unless --ignore-cluster is given, the cluster is checked first: the CRDs must
be installed and Linkerd must not be (use linkerd upgrade to change it).`,
		Example: `  linkerd install --crds | kubectl apply -f -
  linkerd install --ha | kubectl apply -f -
  linkerd install --identity-trust-anchors-file ca.crt \
    --identity-issuer-certificate-file issuer.crt --identity-issuer-key-file issuer.key \
    | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			return runInstall(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), global, opts)
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().BoolVar(&opts.ignoreCluster, "ignore-cluster", false, "render without looking at the cluster (no check of an existing installation or the CRDs)")
	return cmd
}

func runInstall(ctx context.Context, stdout, stderr io.Writer, global *GlobalOptions, opts *installOptions) error {
	ns := global.LinkerdNamespace
	if !opts.ignoreCluster && !opts.crds {
		kube, err := newKubeClient(global)
		if err != nil {
			return fmt.Errorf("%w (use --ignore-cluster to render without a cluster)", err)
		}
		if err := checkInstallable(ctx, kube, ns); err != nil {
			return err
		}
	}
	docs, err := renderInstall(&opts.renderOptions, ns, nil, stderr)
	if err != nil {
		return err
	}
	return writeManifests(stdout, docs, opts.output)
}

// newKubeClient is the CLI's Kubernetes client for the global flags.
func newKubeClient(global *GlobalOptions) (kubernetes.Interface, error) {
	_, kube, err := kubeClients(global)
	return kube, err
}

// kubeClients returns the client configuration the global flags name and
// a Kubernetes client made of it.
func kubeClients(global *GlobalOptions) (*rest.Config, kubernetes.Interface, error) {
	cfg, err := restConfig(global)
	if err != nil {
		return nil, nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cfg, kube, nil
}

// errAlreadyInstalled is returned by install when the control plane exists.
var errAlreadyInstalled = errors.New("linkerd has already been installed")

// checkInstallable fails when Linkerd is already installed in ns or when
// the CRDs are missing.
func checkInstallable(ctx context.Context, kube kubernetes.Interface, ns string) error {
	ctx, cancel := context.WithTimeout(ctx, clusterCheckTimeout)
	defer cancel()
	_, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, k8s.ConfigMapName, metav1.GetOptions{})
	switch {
	case err == nil:
		return fmt.Errorf("%w on your cluster in the %s namespace: use `linkerd upgrade` to change it (or --ignore-cluster to render anyway)", errAlreadyInstalled, ns)
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("checking for an existing installation (use --ignore-cluster to render without a cluster): %w", err)
	}
	missing, err := missingCRDs(ctx, kube)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("the Linkerd CRDs must be installed first (missing %s): run `linkerd install --crds | kubectl apply -f -`", strings.Join(missing, ", "))
	}
	return nil
}

// missingCRDs returns the names of the CRDs of the linkerd-crds chart
// (with its default values) that the cluster does not have.
func missingCRDs(ctx context.Context, kube kubernetes.Interface) ([]string, error) {
	docs, err := renderChart(charts.CRDs, nil, "linkerd-crds", DefaultLinkerdNamespace)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, d := range docs {
		if d.Kind != "CustomResourceDefinition" {
			continue
		}
		err := kube.Discovery().RESTClient().Get().
			AbsPath("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", d.Name).
			Do(ctx).Error()
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, d.Name)
		case err != nil:
			return nil, fmt.Errorf("checking for CRD %s: %w", d.Name, err)
		}
	}
	return missing, nil
}

// userValues merges the -f files (in order), then --set and --set-string,
// as Helm does.
func (o *renderOptions) userValues() (map[string]any, error) {
	vals := map[string]any{}
	for _, f := range o.valueFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--values: %w", err)
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("--values %s: %w", f, err)
		}
		vals = chartvalues.Merge(vals, m)
	}
	for _, s := range o.setValues {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("--set %s: %w", s, err)
		}
	}
	for _, s := range o.setStrings {
		if err := strvals.ParseIntoString(s, vals); err != nil {
			return nil, fmt.Errorf("--set-string %s: %w", s, err)
		}
	}
	return vals, nil
}

// renderInstall renders the CRDs (opts.crds) or the control plane in ns.
// stored are the values of an existing installation (upgrade), the lowest
// layer under --ha, the flags and the user's values. Warnings (e.g. a
// certificate expiring soon) go to stderr.
func renderInstall(opts *renderOptions, ns string, stored map[string]any, stderr io.Writer) ([]manifest, error) {
	user, err := opts.userValues()
	if err != nil {
		return nil, err
	}
	if opts.crds {
		return renderChart(charts.CRDs, user, "linkerd-crds", ns)
	}

	// The CLI renders the control plane's Namespace (the chart leaves it to
	// `helm install --create-namespace` by default); an installation's own
	// value, or the user's, wins.
	layers := []map[string]any{{"installNamespace": true}, stored}
	if opts.ha {
		ha, err := charts.ReadFile(charts.ControlPlane + "/values-ha.yaml")
		if err != nil {
			return nil, err
		}
		haValues := map[string]any{}
		if err := yaml.Unmarshal(ha, &haValues); err != nil {
			return nil, fmt.Errorf("parsing values-ha.yaml: %w", err)
		}
		layers = append(layers, haValues)
	}
	flagValues := map[string]any{
		"linkerdVersion":      version.Version,
		"cliVersion":          "linkerd/cli " + version.Version,
		"controllerNamespace": ns,
	}
	if opts.clusterDomain != "" {
		flagValues["clusterDomain"] = opts.clusterDomain
	}
	if opts.trustDomain != "" {
		flagValues["identityTrustDomain"] = opts.trustDomain
	}
	layers = append(layers, flagValues, user)
	vals := map[string]any{}
	for _, l := range layers {
		vals = chartvalues.Merge(vals, l)
	}
	if got, ok := vals["controllerNamespace"].(string); ok && got != ns {
		return nil, fmt.Errorf("controllerNamespace %q differs from --linkerd-namespace %q: set the namespace with --linkerd-namespace only", got, ns)
	}

	defaults, err := charts.Values(charts.ControlPlane)
	if err != nil {
		return nil, err
	}
	effective := chartvalues.Merge(defaults, vals)
	if err := setIdentity(vals, effective, opts, ns, stderr); err != nil {
		return nil, err
	}
	if err := setWebhookCerts(vals, effective, ns); err != nil {
		return nil, err
	}
	return renderChart(charts.ControlPlane, vals, "linkerd-control-plane", ns)
}

// setIdentity fills the trust anchors and the issuer into vals: from the
// --identity-* files, else from the values, else generated. The result is
// checked: an issuer not signed by an anchor, or outside its validity, is an
// error; one expiring soon a warning.
func setIdentity(vals, effective map[string]any, opts *renderOptions, ns string, stderr io.Writer) error {
	scheme := chartvalues.String(effective, "identity.issuer.scheme")
	anchorsPEM := chartvalues.String(effective, "identityTrustAnchorsPEM")
	crtPEM := chartvalues.String(effective, "identity.issuer.tls.crtPEM")
	keyPEM := chartvalues.String(effective, "identity.issuer.tls.keyPEM")

	if opts.trustAnchors != "" {
		b, err := os.ReadFile(opts.trustAnchors)
		if err != nil {
			return fmt.Errorf("--identity-trust-anchors-file: %w", err)
		}
		anchorsPEM = string(b)
	}
	if opts.issuerCert != "" {
		c, err := os.ReadFile(opts.issuerCert)
		if err != nil {
			return fmt.Errorf("--identity-issuer-certificate-file: %w", err)
		}
		k, err := os.ReadFile(opts.issuerKey)
		if err != nil {
			return fmt.Errorf("--identity-issuer-key-file: %w", err)
		}
		crtPEM, keyPEM = string(c), string(k)
	}

	trustDomain := chartvalues.String(effective, "identityTrustDomain")
	if opts.trustDomain != "" {
		trustDomain = opts.trustDomain
	}
	if trustDomain == "" {
		trustDomain = chartvalues.String(effective, "clusterDomain")
	}

	switch scheme {
	case identity.IssuerSchemeKubernetes:
		// The issuer Secret is managed outside Linkerd: only the anchors.
		if strings.TrimSpace(anchorsPEM) == "" {
			return fmt.Errorf("identity.issuer.scheme %s needs the trust anchors: --identity-trust-anchors-file or identityTrustAnchorsPEM", scheme)
		}
		if _, err := pki.DecodeCertificatesPEM([]byte(anchorsPEM)); err != nil {
			return fmt.Errorf("trust anchors: %w", err)
		}
		chartvalues.Set(vals, "identityTrustAnchorsPEM", anchorsPEM)
		return nil
	case identity.IssuerSchemeLinkerd:
	default:
		return fmt.Errorf("identity.issuer.scheme must be %s or %s, not %q", identity.IssuerSchemeLinkerd, identity.IssuerSchemeKubernetes, scheme)
	}

	haveAnchors, haveIssuer := strings.TrimSpace(anchorsPEM) != "", strings.TrimSpace(crtPEM) != "" || strings.TrimSpace(keyPEM) != ""
	switch {
	case !haveAnchors && !haveIssuer:
		anchor, err := pki.NewCA("root.linkerd."+trustDomain, pki.DefaultAnchorLifetime)
		if err != nil {
			return err
		}
		issuer, err := anchor.NewIssuer("identity."+ns+"."+trustDomain, pki.DefaultIssuerLifetime)
		if err != nil {
			return err
		}
		keyBytes, err := pki.EncodePrivateKeyPEM(issuer.Key)
		if err != nil {
			return err
		}
		anchorsPEM = string(pki.EncodeCertificatesPEM(anchor.Cert))
		crtPEM = string(pki.EncodeCertificatesPEM(issuer.Chain()...))
		keyPEM = string(keyBytes)
	case !haveIssuer:
		return errors.New("trust anchors were given without an issuer: give --identity-issuer-certificate-file and --identity-issuer-key-file too")
	case !haveAnchors:
		return errors.New("an issuer was given without trust anchors: give --identity-trust-anchors-file too")
	}

	anchors, err := pki.DecodeCertificatesPEM([]byte(anchorsPEM))
	if err != nil {
		return fmt.Errorf("trust anchors: %w", err)
	}
	issuer, err := pki.LoadIssuer([]byte(crtPEM), []byte(keyPEM))
	if err != nil {
		return err
	}
	var problems, warnings []string
	for _, r := range pki.Check(anchors, issuer.Chain(), pki.CheckOptions{}) {
		switch r.Status {
		case pki.StatusError:
			problems = append(problems, r.Message)
		case pki.StatusWarning:
			warnings = append(warnings, fmt.Sprintf("%s (want: %s)", r.Message, r.Description))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid identity certificates: %s", strings.Join(problems, "; "))
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "Warning: %s\n", w)
	}
	chartvalues.Set(vals, "identityTrustAnchorsPEM", anchorsPEM)
	chartvalues.Set(vals, "identity.issuer.tls.crtPEM", crtPEM)
	chartvalues.Set(vals, "identity.issuer.tls.keyPEM", keyPEM)
	return nil
}

// webhookCertLifetime is how long a generated webhook certificate is valid.
const webhookCertLifetime = 365 * 24 * time.Hour

// webhookTLS is an admission webhook of the control plane whose serving
// certificate install generates and upgrade keeps.
type webhookTLS struct {
	// values is the chart's values key: <values>.crtPEM, .keyPEM,
	// .caBundle, .externalSecret.
	values string
	// service is the webhook's Service: the certificate is for
	// <service>.<namespace>.svc.
	service string
	// secret is the kubernetes.io/tls Secret the chart renders the
	// certificate into.
	secret string
}

// webhookTLSs are the control plane's admission webhooks.
var webhookTLSs = []webhookTLS{
	{values: "proxyInjector", service: k8s.ProxyInjectorServiceName, secret: k8s.ProxyInjectorTLSSecretName},
	{values: "profileValidator", service: k8s.SPValidatorServiceName, secret: k8s.SPValidatorTLSSecretName},
	{values: "policyValidator", service: k8s.PolicyValidatorServiceName, secret: k8s.PolicyValidatorTLSSecretName},
}

// setWebhookCerts generates each webhook's serving certificate and CA
// bundle unless the values have them (or its Secret is external).
func setWebhookCerts(vals, effective map[string]any, ns string) error {
	for _, w := range webhookTLSs {
		if err := w.setCert(vals, effective, ns); err != nil {
			return err
		}
	}
	return nil
}

func (w webhookTLS) setCert(vals, effective map[string]any, ns string) error {
	prefix := w.values + "."
	if chartvalues.String(effective, prefix+"caBundle") != "" && (chartvalues.Bool(effective, prefix+"externalSecret") ||
		chartvalues.String(effective, prefix+"crtPEM") != "" && chartvalues.String(effective, prefix+"keyPEM") != "") {
		return nil
	}
	if chartvalues.Bool(effective, prefix+"externalSecret") {
		return fmt.Errorf("%sexternalSecret needs %scaBundle, the CA that signed the webhook's certificate", prefix, prefix)
	}
	crt, key, ca, err := webhookCert(w.service + "." + ns + ".svc")
	if err != nil {
		return err
	}
	chartvalues.Set(vals, prefix+"crtPEM", crt)
	chartvalues.Set(vals, prefix+"keyPEM", key)
	chartvalues.Set(vals, prefix+"caBundle", ca)
	return nil
}

// webhookCert returns a serving certificate (PEM, with its CA) for the DNS
// name, its key, and the CA's certificate: a self-signed CA made for it.
func webhookCert(name string) (crtPEM, keyPEM, caPEM string, err error) {
	ca, err := pki.NewCA("webhook.linkerd.cluster.local", webhookCertLifetime)
	if err != nil {
		return "", "", "", err
	}
	key, err := pki.GenerateKey()
	if err != nil {
		return "", "", "", err
	}
	csrDER, err := pki.MakeCSR(key, name)
	if err != nil {
		return "", "", "", err
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return "", "", "", err
	}
	leaf, err := ca.SignCSR(csr, webhookCertLifetime, pki.DefaultClockSkew)
	if err != nil {
		return "", "", "", err
	}
	keyBytes, err := pki.EncodePrivateKeyPEM(key)
	if err != nil {
		return "", "", "", err
	}
	return string(pki.EncodeCertificatesPEM(leaf, ca.Cert)), string(keyBytes), string(pki.EncodeCertificatesPEM(ca.Cert)), nil
}
