// Package kubeinstall checks `linkerd install`, `upgrade` and `uninstall`
// against a real kube-apiserver (test/cluster): every rendered object must
// be accepted by the API server's validation and admission (server-side
// dry run), and the cluster checks must see what is installed.
//
// The tests share one cluster and run in order: the first one runs before
// the CRDs exist, the last one uninstalls everything.
package kubeinstall

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/charts"
	"github.com/linkerd-go/linkerd/charts/chartstest"
	"github.com/linkerd-go/linkerd/cli/cmd"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// linkerd runs the CLI against the cluster and returns its exit code,
// stdout and stderr.
func linkerd(t *testing.T, c *cluster.Cluster, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	full := append([]string{"--kubeconfig", c.Kubeconfig}, args...)
	code := cmd.Execute(ctx, full, cmd.Env{Stdout: &stdout, Stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

// mustLinkerd is linkerd that fails the test on a non-zero exit.
func mustLinkerd(t *testing.T, c *cluster.Cluster, args ...string) string {
	t.Helper()
	code, out, stderr := linkerd(t, c, args...)
	if code != 0 {
		t.Fatalf("linkerd %s: exit code %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

// kubectlFile runs kubectl with args and the manifest as -f.
func kubectlFile(t *testing.T, c *cluster.Cluster, manifest string, args ...string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	return c.Kubectl(t, append(args, "-f", f)...)
}

// controlPlaneNamespace returns a fresh name for a control plane: each test
// installs its own, so they do not see each other's.
func controlPlaneNamespace(t *testing.T, prefix string) string {
	t.Helper()
	return prefix + "-" + strings.ToLower(strings.ReplaceAll(time.Now().Format("150405.000"), ".", ""))
}

// installCRDs applies `linkerd install --crds` and waits until the API
// server serves them.
func installCRDs(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	kubectlFile(t, c, mustLinkerd(t, c, "install", "--crds"), "apply")
	c.Kubectl(t, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/serviceprofiles.linkerd.io", "crd/servers.policy.linkerd.io", "crd/httproutes.policy.linkerd.io")
}

// TestInstallNeedsCRDs runs first, on a cluster without the CRDs.
func TestInstallNeedsCRDs(t *testing.T) {
	c := cluster.Start(t)
	code, out, stderr := linkerd(t, c, "install")
	if code == 0 || out != "" {
		t.Fatalf("install without CRDs: exit code %d, stdout %.200q", code, out)
	}
	if !strings.Contains(stderr, "linkerd install --crds") {
		t.Errorf("stderr %q does not say to install the CRDs", stderr)
	}

	code, out, stderr = linkerd(t, c, "upgrade")
	if code == 0 || out != "" || !strings.Contains(stderr, "not installed") {
		t.Errorf("upgrade without an installation: exit code %d, stderr %q, stdout %.200q", code, stderr, out)
	}
}

// TestServerDryRun: the CRDs apply for real; `install` and `install --ha`
// are accepted by the API server in a server-side dry run.
func TestServerDryRun(t *testing.T) {
	c := cluster.Start(t)
	installCRDs(t, c)
	// A second apply of the same CRDs changes nothing and is accepted.
	kubectlFile(t, c, mustLinkerd(t, c, "install", "--crds"), "apply", "--dry-run=server")

	for _, variant := range [][]string{nil, {"--ha"}, {"--set", "proxy.nativeSidecar=true"}} {
		t.Run(strings.Join(append([]string{"install"}, variant...), " "), func(t *testing.T) {
			ns := controlPlaneNamespace(t, "l5d-dry")
			// A namespaced object's dry run needs its namespace to exist.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
			})
			out := mustLinkerd(t, c, append([]string{"install", "-L", ns}, variant...)...)
			got := kubectlFile(t, c, out, "apply", "--dry-run=server")
			// kubectl names each object it accepted; every one must be there.
			for _, want := range []string{
				"deployment.apps/linkerd-identity", "deployment.apps/linkerd-destination", "deployment.apps/linkerd-proxy-injector",
				"mutatingwebhookconfiguration.admissionregistration.k8s.io/" + k8s.ProxyInjectorWebhookConfigName,
				"validatingwebhookconfiguration.admissionregistration.k8s.io/" + k8s.SPValidatorWebhookConfigName,
				"secret/" + k8s.SPValidatorTLSSecretName, "service/" + k8s.SPValidatorServiceName,
				"secret/" + k8s.IssuerSecretName, "configmap/" + k8s.ConfigMapName,
			} {
				if !strings.Contains(got, want) {
					t.Errorf("kubectl output lacks %s:\n%s", want, got)
				}
			}
			if n := strings.Count(got, "(server dry run)"); n != strings.Count(out, "\n---\n")+1 {
				t.Errorf("kubectl accepted %d objects, the output has %d:\n%s", n, strings.Count(out, "\n---\n")+1, got)
			}
		})
	}
}

// TestHelmServerDryRun: the charts as `helm install` renders them, without
// `linkerd install` (the webhook certificates generated by the chart, the
// namespace created by --create-namespace), are accepted by the API server
// in a server-side dry run, with and without values-ha.yaml.
func TestHelmServerDryRun(t *testing.T) {
	c := cluster.Start(t)
	dir := t.TempDir()
	ns := controlPlaneNamespace(t, "l5d-helm")
	createNamespace(t, c, ns) // helm install --create-namespace

	// helm install linkerd-crds CHART -n NS: applied for real (the CLI's
	// CRDs are the same chart), then the control plane's dry run.
	crds := helmRender(t, dir, charts.CRDs, chartstest.Install{Release: "linkerd-crds", Namespace: ns})
	kubectlFile(t, c, crds, "apply")
	c.Kubectl(t, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/serviceprofiles.linkerd.io", "crd/servers.policy.linkerd.io", "crd/httproutes.policy.linkerd.io")

	setFiles := identityFiles(t, dir)
	for _, variant := range []struct {
		name   string
		values []string
	}{
		{"default", nil},
		{"ha", []string{filepath.Join(dir, charts.ControlPlane, "values-ha.yaml")}},
	} {
		t.Run(variant.name, func(t *testing.T) {
			out := helmRender(t, dir, charts.ControlPlane, chartstest.Install{
				Release: "linkerd-control-plane", Namespace: ns,
				Values:  variant.values,
				Set:     []string{"controllerNamespace=" + ns},
				SetFile: setFiles,
			})
			if strings.Contains(out, "\nkind: Namespace\n") {
				t.Error("the chart renders the Namespace under helm install")
			}
			got := kubectlFile(t, c, out, "apply", "--dry-run=server")
			for _, want := range []string{
				"deployment.apps/linkerd-identity", "deployment.apps/linkerd-destination", "deployment.apps/linkerd-proxy-injector",
				"mutatingwebhookconfiguration.admissionregistration.k8s.io/" + k8s.ProxyInjectorWebhookConfigName,
				"validatingwebhookconfiguration.admissionregistration.k8s.io/" + k8s.SPValidatorWebhookConfigName,
				"secret/" + k8s.ProxyInjectorTLSSecretName, "secret/" + k8s.SPValidatorTLSSecretName,
				"secret/" + k8s.IssuerSecretName, "configmap/" + k8s.ConfigMapName,
			} {
				if !strings.Contains(got, want) {
					t.Errorf("kubectl output lacks %s:\n%s", want, got)
				}
			}
			if n, docs := strings.Count(got, "(server dry run)"), strings.Count(out, "# Source: "); n != docs {
				t.Errorf("kubectl accepted %d objects, the chart rendered %d:\n%s", n, docs, got)
			}
		})
	}
}

// TestCRDSchemas: the CRDs' schemas accept the resources users write and
// reject malformed ones (server-side dry run).
func TestCRDSchemas(t *testing.T) {
	c := cluster.Start(t)
	installCRDs(t, c)
	ns := c.Namespace(t)
	valid := `apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: web.` + ns + `.svc.cluster.local
  namespace: ` + ns + `
spec:
  routes:
  - name: GET /api/vote
    condition:
      method: GET
      pathRegex: /api/vote
    responseClasses:
    - condition:
        status: {min: 500, max: 599}
      isFailure: true
    isRetryable: true
    timeout: 300ms
  - name: POST or PUT
    condition:
      any:
      - method: POST
      - all: [{method: PUT}, {pathRegex: /x}]
      not: {pathRegex: /health}
  retryBudget:
    retryRatio: 0.2
    minRetriesPerSecond: 10
    ttl: 10s
  dstOverrides:
  - authority: web-v2.` + ns + `.svc.cluster.local:80
    weight: 500m
  - authority: web.` + ns + `.svc.cluster.local:80
    weight: 1
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata:
  name: web-http
  namespace: ` + ns + `
spec:
  podSelector:
    matchLabels: {app: web}
  port: http
  proxyProtocol: HTTP/1
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata:
  name: web-8080
  namespace: ` + ns + `
spec:
  podSelector: {}
  port: 8080
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata:
  name: voters
  namespace: ` + ns + `
spec:
  identities: ["voting.` + ns + `.serviceaccount.identity.linkerd.cluster.local"]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata:
  name: cluster
  namespace: ` + ns + `
spec:
  networks:
  - cidr: 10.0.0.0/8
    except: [10.1.0.0/16]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: web
  namespace: ` + ns + `
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs:
  - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: voters}
---
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata:
  name: web
  namespace: ` + ns + `
spec:
  server: {name: web-http}
  client:
    meshTLS:
      serviceAccounts: [{name: voting}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata:
  name: web-api
  namespace: ` + ns + `
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: web-http}]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /api}
      method: GET
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-route, value: api}]
    timeouts: {request: 5s}
`
	out := kubectlFile(t, c, valid, "apply", "--dry-run=server")
	if n := strings.Count(out, "(server dry run)"); n != 8 {
		t.Errorf("%d of 8 resources accepted:\n%s", n, out)
	}

	for _, bad := range []struct{ name, doc, want string }{
		{"route without a name", `apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: x, namespace: ` + ns + `}
spec:
  routes: [{condition: {method: GET}}]
`, "name"},
		{"retry budget without ttl", `apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: x, namespace: ` + ns + `}
spec:
  retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 10}
`, "ttl"},
		{"port out of range", `apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: x, namespace: ` + ns + `}
spec:
  podSelector: {}
  port: 70000
`, "port"},
		{"unknown protocol", `apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: x, namespace: ` + ns + `}
spec:
  podSelector: {}
  port: 80
  proxyProtocol: HTTP/3
`, "proxyProtocol"},
		{"network without cidr", `apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: x, namespace: ` + ns + `}
spec:
  networks: [{except: [10.0.0.0/8]}]
`, "cidr"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(f, []byte(bad.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			cluster.RequireKubectl(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, cluster.KubectlPath(), "--kubeconfig", c.Kubeconfig, "apply", "--dry-run=server", "-f", f).CombinedOutput()
			if err == nil {
				t.Fatalf("accepted:\n%s", out)
			}
			if !strings.Contains(string(out), bad.want) {
				t.Errorf("rejected, but the error does not name %q:\n%s", bad.want, out)
			}
		})
	}
}

// TestInstallUpgradeUninstall installs for real, then: a second install is
// refused, upgrade keeps the issuer and applies, uninstall deletes it all.
// It runs last: uninstall removes the CRDs.
func TestInstallUpgradeUninstall(t *testing.T) {
	c := cluster.Start(t)
	installCRDs(t, c)
	ns := controlPlaneNamespace(t, "l5d-real")
	kubectlFile(t, c, mustLinkerd(t, c, "install", "-L", ns), "apply")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	issuer, err := c.Client.CoreV1().Secrets(ns).Get(ctx, k8s.IssuerSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("issuer Secret after install: %v", err)
	}
	spTLS, err := c.Client.CoreV1().Secrets(ns).Get(ctx, k8s.SPValidatorTLSSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("sp-validator Secret after install: %v", err)
	}

	// install over an installation is refused.
	code, out, stderr := linkerd(t, c, "install", "-L", ns)
	if code == 0 || out != "" || !strings.Contains(stderr, "already been installed") || !strings.Contains(stderr, "linkerd upgrade") {
		t.Errorf("second install: exit code %d, stderr %q, stdout %.200q", code, stderr, out)
	}

	// upgrade keeps the issuer and the webhook certificate, applies the new values.
	upgraded := mustLinkerd(t, c, "upgrade", "-L", ns, "--set", "controllerLogLevel=debug")
	if !strings.Contains(upgraded, "-log-level=debug") {
		t.Error("upgrade output lacks the --set value")
	}
	kubectlFile(t, c, upgraded, "apply")
	after, err := c.Client.CoreV1().Secrets(ns).Get(ctx, k8s.IssuerSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{k8s.IssuerCertKey, k8s.IssuerKeyKey} {
		if !bytes.Equal(issuer.Data[key], after.Data[key]) {
			t.Errorf("upgrade changed the issuer's %s", key)
		}
	}
	spAfter, err := c.Client.CoreV1().Secrets(ns).Get(ctx, k8s.SPValidatorTLSSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		if !bytes.Equal(spTLS.Data[key], spAfter.Data[key]) {
			t.Errorf("upgrade changed the sp-validator's %s", key)
		}
	}
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, k8s.ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data[k8s.ConfigValuesKey], "controllerLogLevel: debug") {
		t.Error("linkerd-config does not hold the upgraded value")
	}
	// The upgraded values are kept by the next upgrade.
	if again := mustLinkerd(t, c, "upgrade", "-L", ns); !strings.Contains(again, "-log-level=debug") {
		t.Error("a second upgrade lost the value set by the first")
	}

	// uninstall lists what exists, for kubectl delete.
	manifest := mustLinkerd(t, c, "uninstall", "-L", ns)
	for _, want := range []string{"kind: Namespace", "kind: CustomResourceDefinition", "kind: MutatingWebhookConfiguration", "name: " + k8s.IssuerSecretName} {
		if !strings.Contains(manifest, want) {
			t.Errorf("uninstall output lacks %q:\n%s", want, manifest)
		}
	}
	if i, j := strings.Index(manifest, "kind: Namespace"), strings.Index(manifest, "kind: CustomResourceDefinition"); i > j {
		t.Error("uninstall lists the CRDs before the namespace")
	}
	// No controller manager: the namespace stays Terminating, so do not wait.
	kubectlFile(t, c, manifest, "delete", "--wait=false")
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, k8s.ConfigMapName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("linkerd-config after uninstall: %v", err)
	}
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, k8s.ProxyInjectorWebhookConfigName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("webhook configuration after uninstall: %v", err)
	}
	if _, err := c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, k8s.SPValidatorWebhookConfigName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("sp-validator webhook configuration after uninstall: %v", err)
	}
	if _, err := c.Client.RbacV1().ClusterRoles().Get(ctx, k8s.ClusterRoleName(ns, k8s.IdentityComponent), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("identity ClusterRole after uninstall: %v", err)
	}
}
