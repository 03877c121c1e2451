package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/charts/chartstest"
	"github.com/linkerd-go/linkerd/charts/chartvalues"
	"github.com/linkerd-go/linkerd/internal/golden"
	policyapi "github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/pki"
)

// fixedCertArgs render with the certificates in testdata (valid until
// 2125), so that the output does not change from run to run.
var fixedCertArgs = []string{
	"--ignore-cluster",
	"--identity-trust-anchors-file", "testdata/install_trust_anchors.pem",
	"--identity-issuer-certificate-file", "testdata/install_issuer.crt",
	"--identity-issuer-key-file", "testdata/install_issuer.key",
	"-f", "testdata/install_webhook_values.yaml",
}

// runCLI runs the CLI with args and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Execute(context.Background(), args, Env{Stdout: &stdout, Stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

// TestInstallGolden compares `linkerd install` outputs with
// testdata/install_*.golden. Regenerate with: go test ./cli/cmd -run
// TestInstallGolden -update
func TestInstallGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"install_default", append([]string{"install"}, fixedCertArgs...)},
		{"install_ha", append([]string{"install", "--ha"}, fixedCertArgs...)},
		{"install_crds", []string{"install", "--crds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, got, stderr := runCLI(t, tt.args...)
			if code != 0 {
				t.Fatalf("exit code %d, stderr: %s", code, stderr)
			}
			if stderr != "" {
				t.Errorf("unexpected stderr: %s", stderr)
			}
			golden.Check(t, tt.name, got)
		})
	}
}

// strictDecoder decodes Kubernetes objects, rejecting unknown and
// duplicate fields.
func strictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}

// policyDoc matches a document of a policy.linkerd.io resource.
var policyDoc = regexp.MustCompile(`(?m)^apiVersion: policy\.linkerd\.io/`)

// decodeAll splits a YAML stream and decodes every document into its typed
// object.
func decodeAll(t *testing.T, out string) []runtime.Object {
	t.Helper()
	dec := strictDecoder(t)
	var objs []runtime.Object
	for _, doc := range docSeparator.Split(out, -1) {
		if !hasContent(doc) {
			continue
		}
		if policyDoc.MatchString(doc) {
			// Policy resources have no runtime scheme: decoded and
			// validated as the policy controller does, not returned.
			if _, err := policyapi.Decode([]byte(doc)); err != nil {
				t.Fatalf("decoding document:\n%s\nerror: %v", doc, err)
			}
			continue
		}
		obj, gvk, err := dec.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("decoding document:\n%s\nerror: %v", doc, err)
		}
		if gvk.Kind == "" || obj.GetObjectKind().GroupVersionKind().Kind != gvk.Kind {
			t.Fatalf("document without kind:\n%s", doc)
		}
		objs = append(objs, obj)
	}
	return objs
}

// TestInstallObjects decodes every rendered document into its Go type
// (strictly: an unknown or misplaced field fails) and checks the objects the
// rest of the project finds by name.
func TestInstallObjects(t *testing.T) {
	type key struct{ kind, name string }
	cases := []struct {
		name string
		args []string
		want []key
		// replicas of every Deployment; pdbs present or not
		replicas int32
		ha       bool
	}{
		{
			name:     "default",
			args:     append([]string{"install"}, fixedCertArgs...),
			replicas: 1,
		},
		{
			name:     "ha",
			args:     append([]string{"install", "--ha"}, fixedCertArgs...),
			replicas: 3,
			ha:       true,
		},
		{
			name:     "set and namespace",
			args:     append([]string{"install", "-L", "mesh", "--set", "controllerLogLevel=debug", "--set-string", "podLabels.team=7"}, fixedCertArgs...),
			replicas: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit code %d, stderr: %s", code, stderr)
			}
			ns := k8s.ControlPlaneNamespace
			for i, a := range tc.args {
				if a == "-L" {
					ns = tc.args[i+1]
				}
			}
			objs := decodeAll(t, out)
			found := map[key]runtime.Object{}
			var kinds []string
			for _, o := range objs {
				m, ok := o.(interface {
					GetName() string
					GetNamespace() string
				})
				if !ok {
					t.Fatalf("object %T has no metadata", o)
				}
				kind := o.GetObjectKind().GroupVersionKind().Kind
				kinds = append(kinds, kind)
				found[key{kind, m.GetName()}] = o
				if kind != "Namespace" && kind != "ClusterRole" && kind != "ClusterRoleBinding" && kind != "MutatingWebhookConfiguration" && kind != "ValidatingWebhookConfiguration" && m.GetNamespace() != ns {
					t.Errorf("%s %s is in namespace %q, want %q", kind, m.GetName(), m.GetNamespace(), ns)
				}
			}
			if kinds[0] != "Namespace" {
				t.Errorf("first object is a %s, want the Namespace", kinds[0])
			}
			for _, k := range []key{
				{"Namespace", ns},
				{"ConfigMap", k8s.ConfigMapName},
				{"ConfigMap", k8s.TrustRootsConfigMapName},
				{"Secret", k8s.IssuerSecretName},
				{"Secret", k8s.ProxyInjectorTLSSecretName},
				{"Deployment", k8s.IdentityDeploymentName},
				{"Deployment", k8s.DestinationDeploymentName},
				{"Deployment", k8s.ProxyInjectorDeploymentName},
				{"Service", k8s.IdentityServiceName},
				{"Service", k8s.IdentityHeadlessServiceName},
				{"Service", k8s.DestinationServiceName},
				{"Service", k8s.DestinationHeadlessServiceName},
				{"Service", k8s.ProxyInjectorServiceName},
				{"MutatingWebhookConfiguration", k8s.ProxyInjectorWebhookConfigName},
				{"Secret", k8s.SPValidatorTLSSecretName},
				{"Service", k8s.SPValidatorServiceName},
				{"ValidatingWebhookConfiguration", k8s.SPValidatorWebhookConfigName},
				{"ClusterRole", k8s.ClusterRoleName(ns, k8s.IdentityComponent)},
				{"ClusterRoleBinding", k8s.ClusterRoleName(ns, k8s.DestinationComponent)},
				{"ClusterRole", k8s.ClusterRoleName(ns, k8s.ProxyInjectorComponent)},
			} {
				if found[k] == nil {
					t.Errorf("no %s %s in the output", k.kind, k.name)
				}
			}
			nsObj, _ := found[key{"Namespace", ns}].(*corev1.Namespace)
			if nsObj != nil && (nsObj.Labels[k8s.LinkerdNamespaceLabel] != "true" || nsObj.Labels[k8s.AdmissionWebhooksLabel] != "disabled" || nsObj.Labels[k8s.ControlPlaneNSLabel] != ns) {
				t.Errorf("namespace labels = %v", nsObj.Labels)
			}
			for _, name := range []string{k8s.IdentityDeploymentName, k8s.DestinationDeploymentName, k8s.ProxyInjectorDeploymentName} {
				d, _ := found[key{"Deployment", name}].(*appsv1.Deployment)
				if d == nil {
					continue
				}
				checkControlPlaneDeployment(t, d, ns, tc.replicas, tc.ha)
			}
			pdbs := 0
			for k := range found {
				if k.kind == "PodDisruptionBudget" {
					pdbs++
				}
			}
			if tc.ha && pdbs != 3 || !tc.ha && pdbs != 0 {
				t.Errorf("%d PodDisruptionBudgets, want %d", pdbs, map[bool]int{true: 3}[tc.ha])
			}
			if tc.name == "set and namespace" {
				d := found[key{"Deployment", k8s.IdentityDeploymentName}].(*appsv1.Deployment)
				if d.Spec.Template.Labels["team"] != "7" {
					t.Errorf("--set-string podLabels.team=7 not applied: labels %v", d.Spec.Template.Labels)
				}
				if !slices.Contains(d.Spec.Template.Spec.Containers[1].Args, "-log-level=debug") {
					t.Errorf("--set controllerLogLevel=debug not applied: args %v", d.Spec.Template.Spec.Containers[1].Args)
				}
			}
		})
	}
}

// checkControlPlaneDeployment checks what every control-plane pod needs:
// its labels, a proxy and linkerd-init, non-root containers.
func checkControlPlaneDeployment(t *testing.T, d *appsv1.Deployment, ns string, replicas int32, ha bool) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
		t.Errorf("%s: replicas %v, want %d", d.Name, d.Spec.Replicas, replicas)
	}
	pod := d.Spec.Template
	if pod.Labels[k8s.ControllerComponentLabel] == "" || pod.Labels[k8s.ControllerNSLabel] != ns {
		t.Errorf("%s: pod labels %v lack the control-plane labels", d.Name, pod.Labels)
	}
	if len(pod.Spec.InitContainers) == 0 || pod.Spec.InitContainers[0].Name != k8s.InitContainerName {
		t.Errorf("%s: first init container is not %s", d.Name, k8s.InitContainerName)
	}
	if len(pod.Spec.Containers) < 2 || pod.Spec.Containers[0].Name != k8s.ProxyContainerName {
		t.Fatalf("%s: first container is not %s", d.Name, k8s.ProxyContainerName)
	}
	for _, c := range pod.Spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: container %s may run as root", d.Name, c.Name)
		}
	}
	main := pod.Spec.Containers[1]
	if main.Command[0] != k8s.ControllerBinPath || !strings.HasPrefix(main.Image, k8s.ControllerImageName+":") {
		t.Errorf("%s: command %v", d.Name, main.Command)
	}
	if (pod.Spec.Affinity != nil) != ha {
		t.Errorf("%s: affinity %v with ha=%v", d.Name, pod.Spec.Affinity, ha)
	}
	if ha && (main.Resources.Requests.Cpu().IsZero() || main.Resources.Limits.Memory().IsZero()) {
		t.Errorf("%s: HA resources missing: %v", d.Name, main.Resources)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the pod's labels", d.Name, k, v)
		}
	}
}

// TestInstallWebhookFailurePolicy checks --ha's fail-closed webhook and
// that --set wins over --ha.
func TestInstallWebhookFailurePolicy(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Ignore"},
		{[]string{"--ha"}, "Fail"},
		{[]string{"--ha", "--set", "webhookFailurePolicy=Ignore"}, "Ignore"},
	} {
		args := append(append([]string{"install"}, tc.args...), fixedCertArgs...)
		code, out, stderr := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit code %d: %s", tc.args, code, stderr)
		}
		seen := 0
		for _, o := range decodeAll(t, out) {
			if w, ok := o.(interface{ GetName() string }); ok && (w.GetName() == k8s.ProxyInjectorWebhookConfigName || w.GetName() == k8s.SPValidatorWebhookConfigName) {
				seen++
				b, _ := json.Marshal(o)
				if !strings.Contains(string(b), `"failurePolicy":"`+tc.want+`"`) {
					t.Errorf("%v: webhook %s, want failurePolicy %s", tc.args, b, tc.want)
				}
			}
		}
		if seen != 2 {
			t.Errorf("%v: %d webhook configurations, want 2", tc.args, seen)
		}
	}
}

// TestInstallGeneratesIdentity renders without certificate files: the
// generated issuer must chain to the generated anchors, and each webhook's
// certificate to its CA bundle, for its service's name.
func TestInstallGeneratesIdentity(t *testing.T) {
	code, out, stderr := runCLI(t, "install", "--ignore-cluster", "--identity-trust-domain", "example.org")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	var anchors, issuerCrt, issuerKey []byte
	webhookCrt, webhookCA := map[string][]byte{}, map[string][]byte{} // by Secret, by configuration
	for _, o := range decodeAll(t, out) {
		switch o := o.(type) {
		case *corev1.ConfigMap:
			if o.Name == k8s.TrustRootsConfigMapName {
				anchors = []byte(o.Data[k8s.TrustRootsKey])
			}
		case *corev1.Secret:
			switch o.Name {
			case k8s.IssuerSecretName:
				issuerCrt, issuerKey = o.Data[k8s.IssuerCertKey], o.Data[k8s.IssuerKeyKey]
			case k8s.ProxyInjectorTLSSecretName, k8s.SPValidatorTLSSecretName:
				webhookCrt[o.Name] = o.Data[corev1.TLSCertKey]
			}
		}
		if w, ok := o.(interface{ GetName() string }); ok && (w.GetName() == k8s.ProxyInjectorWebhookConfigName || w.GetName() == k8s.SPValidatorWebhookConfigName) {
			b, _ := json.Marshal(o)
			var cfg struct {
				Webhooks []struct {
					ClientConfig struct {
						CABundle []byte `json:"caBundle"`
					} `json:"clientConfig"`
				} `json:"webhooks"`
			}
			if err := json.Unmarshal(b, &cfg); err != nil || len(cfg.Webhooks) != 1 {
				t.Fatalf("webhook configuration %s: %v", b, err)
			}
			webhookCA[w.GetName()] = cfg.Webhooks[0].ClientConfig.CABundle
		}
	}
	roots, err := pki.DecodeCertificatesPEM(anchors)
	if err != nil {
		t.Fatalf("trust anchors: %v", err)
	}
	issuer, err := pki.LoadIssuer(issuerCrt, issuerKey)
	if err != nil {
		t.Fatalf("issuer: %v", err)
	}
	if err := pki.VerifyIssuer(issuer, roots); err != nil {
		t.Errorf("generated issuer does not chain to the generated anchors: %v", err)
	}
	if cn := issuer.Cert.Subject.CommonName; cn != "identity.linkerd.example.org" {
		t.Errorf("issuer common name %q, want identity.linkerd.example.org", cn)
	}
	for _, w := range []struct{ secret, config, host string }{
		{k8s.ProxyInjectorTLSSecretName, k8s.ProxyInjectorWebhookConfigName, k8s.ProxyInjectorServiceName + ".linkerd.svc"},
		{k8s.SPValidatorTLSSecretName, k8s.SPValidatorWebhookConfigName, k8s.SPValidatorServiceName + ".linkerd.svc"},
	} {
		leaf, err := pki.DecodeCertificatesPEM(webhookCrt[w.secret])
		if err != nil {
			t.Fatalf("%s certificate: %v", w.secret, err)
		}
		ca, err := pki.DecodeCertificatesPEM(webhookCA[w.config])
		if err != nil {
			t.Fatalf("%s CA bundle: %v", w.config, err)
		}
		if err := pki.VerifyChain(leaf[0], leaf[1:], ca); err != nil {
			t.Errorf("%s certificate does not chain to the CA bundle of %s: %v", w.secret, w.config, err)
		}
		if err := leaf[0].VerifyHostname(w.host); err != nil {
			t.Errorf("%s certificate: %v", w.secret, err)
		}
	}
	if !strings.Contains(out, "-identity-trust-domain=example.org") {
		t.Error("--identity-trust-domain not passed to the controllers")
	}
}

// TestInstallErrors: bad input fails with one clear line and no output.
func TestInstallErrors(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("a: [b"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Anchors that did not sign the testdata issuer.
	other, err := pki.NewCA("other.root", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherAnchors := filepath.Join(dir, "other.pem")
	if err := os.WriteFile(otherAnchors, pki.EncodeCertificatesPEM(other.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad output", []string{"install", "--ignore-cluster", "-o", "xml"}, "--output must be yaml or json"},
		{"issuer without key", []string{"install", "--ignore-cluster", "--identity-issuer-certificate-file", "testdata/install_issuer.crt", "--identity-trust-anchors-file", "testdata/install_trust_anchors.pem"}, "must be given together"},
		{"issuer without anchors", []string{"install", "--ignore-cluster", "--identity-issuer-certificate-file", "testdata/install_issuer.crt", "--identity-issuer-key-file", "testdata/install_issuer.key"}, "needs --identity-trust-anchors-file"},
		{"anchors without issuer", []string{"install", "--ignore-cluster", "--identity-trust-anchors-file", "testdata/install_trust_anchors.pem"}, "without an issuer"},
		{"missing file", []string{"install", "--ignore-cluster", "--identity-trust-anchors-file", "testdata/nope.pem", "--identity-issuer-certificate-file", "testdata/install_issuer.crt", "--identity-issuer-key-file", "testdata/install_issuer.key"}, "--identity-trust-anchors-file"},
		{"certificate and key swapped", []string{"install", "--ignore-cluster", "--identity-trust-anchors-file", "testdata/install_issuer.crt", "--identity-issuer-certificate-file", "testdata/install_trust_anchors.pem", "--identity-issuer-key-file", "testdata/install_issuer.key"}, "issuer key does not match"},
		{"issuer signed by other anchors", []string{"install", "--ignore-cluster", "--identity-trust-anchors-file", otherAnchors, "--identity-issuer-certificate-file", "testdata/install_issuer.crt", "--identity-issuer-key-file", "testdata/install_issuer.key"}, "invalid identity certificates"},
		{"bad values file", []string{"install", "--ignore-cluster", "-f", badYAML}, "--values"},
		{"bad set", []string{"install", "--ignore-cluster", "--set", "a.b"}, "--set a.b"},
		{"bad scheme", []string{"install", "--ignore-cluster", "--set", "identity.issuer.scheme=x"}, "identity.issuer.scheme must be"},
		{"namespace via values", []string{"install", "--ignore-cluster", "--set", "controllerNamespace=other"}, "--linkerd-namespace"},
		{"arguments", []string{"install", "extra"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, tc.args...)
			if code == 0 {
				t.Fatalf("exit code 0, want failure; stdout:\n%.300s", out)
			}
			if out != "" {
				t.Errorf("stdout not empty on failure: %.300s", out)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q, want one line containing %q", stderr, tc.want)
			}
		})
	}
}

// TestInstallJSON: -o json is one v1 List holding the same objects as the
// YAML output.
func TestInstallJSON(t *testing.T) {
	_, yamlOut, _ := runCLI(t, append([]string{"install"}, fixedCertArgs...)...)
	code, out, stderr := runCLI(t, append([]string{"install", "-o", "json"}, fixedCertArgs...)...)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	var list struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	docs := decodeAll(t, yamlOut)
	if list.Kind != "List" || len(list.Items) != len(docs) {
		t.Fatalf("kind %q with %d items, want List with %d", list.Kind, len(list.Items), len(docs))
	}
	dec := strictDecoder(t)
	for i, item := range list.Items {
		obj, _, err := dec.Decode(item, nil, nil)
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		a, _ := yaml.Marshal(obj)
		b, _ := yaml.Marshal(docs[i])
		if !bytes.Equal(a, b) {
			t.Errorf("item %d differs from the YAML output:\n%s\nvs\n%s", i, a, b)
		}
	}
}

// TestInstallConfigHasNoPrivateKeys: linkerd-config is readable by many;
// it must hold the certificates but none of the keys.
func TestInstallConfigHasNoPrivateKeys(t *testing.T) {
	code, out, stderr := runCLI(t, append([]string{"install"}, fixedCertArgs...)...)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	for _, o := range decodeAll(t, out) {
		cm, ok := o.(*corev1.ConfigMap)
		if !ok || cm.Name != k8s.ConfigMapName {
			continue
		}
		values := cm.Data[k8s.ConfigValuesKey]
		if strings.Contains(values, "PRIVATE KEY") {
			t.Errorf("linkerd-config holds a private key:\n%s", values)
		}
		vals := map[string]any{}
		if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
			t.Fatal(err)
		}
		if chartvalues.String(vals, "identity.issuer.tls.crtPEM") == "" || chartvalues.String(vals, "identityTrustAnchorsPEM") == "" {
			t.Error("linkerd-config lacks the issuer certificate or the trust anchors")
		}
		if chartvalues.String(vals, "linkerdVersion") == "" || chartvalues.String(vals, "proxy.image.name") == "" {
			t.Error("linkerd-config lacks linkerdVersion or the proxy values the injector needs")
		}
		return
	}
	t.Fatal("no linkerd-config in the output")
}

// TestInstallWarnsOnExpiringCertificates: certificates valid for less than
// pki.DefaultMinValidity render, with a warning on stderr.
func TestInstallWarnsOnExpiringCertificates(t *testing.T) {
	_, files := chartstest.WriteIdentity(t, t.TempDir(), 48*time.Hour, 24*time.Hour)
	code, out, stderr := runCLI(t, "install", "--ignore-cluster",
		"--identity-trust-anchors-file", files.Anchors,
		"--identity-issuer-certificate-file", files.IssuerCert,
		"--identity-issuer-key-file", files.IssuerKey)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	if strings.Count(stderr, "Warning: ") != 2 || !strings.Contains(stderr, "identity.linkerd.cluster.local") {
		t.Errorf("stderr %q, want a warning for the anchor and one for the issuer", stderr)
	}
	if !strings.Contains(out, "kind: Deployment") {
		t.Error("no manifests on stdout")
	}
}
