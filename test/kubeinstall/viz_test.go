package kubeinstall

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/test/cluster"
	"github.com/linkerd-go/linkerd/viz/vizcheck"
)

// fakeControlPlane creates a namespace holding only what `linkerd viz
// install` reads of the control plane: its linkerd-config values.
func fakeControlPlane(t *testing.T, c *cluster.Cluster) string {
	t.Helper()
	ns := controlPlaneNamespace(t, "l5d-vizcp")
	createNamespace(t, c, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: k8s.ConfigMapName, Namespace: ns},
		Data:       map[string]string{k8s.ConfigValuesKey: "clusterDomain: cluster.local\ncontrollerNamespace: " + ns + "\n"},
	}
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// TestVizInstall: `linkerd viz install` needs the control plane; its
// output (default, --ha, an external Prometheus) is accepted by the API
// server in a server-side dry run; applied for real, `viz uninstall` lists
// every object for kubectl delete, which removes them.
func TestVizInstall(t *testing.T) {
	c := cluster.Start(t)

	code, out, stderr := linkerd(t, c, "viz", "install", "-L", "l5d-nothing-here")
	if code == 0 || out != "" || !strings.Contains(stderr, "linkerd install") {
		t.Errorf("viz install without a control plane: exit code %d, stderr %q, stdout %.200q", code, stderr, out)
	}

	cp := fakeControlPlane(t, c)
	// The chart's policy resources (the tap API's Server) need the CRDs,
	// as a control plane has them.
	installCRDs(t, c)
	for _, variant := range [][]string{nil, {"--ha"}, {"--set", "prometheusUrl=http://prometheus.monitoring:9090"}} {
		t.Run(strings.Join(append([]string{"viz install"}, variant...), " "), func(t *testing.T) {
			vizNS := controlPlaneNamespace(t, "l5d-vizdry")
			createNamespace(t, c, vizNS)
			out := mustLinkerd(t, c, append([]string{"viz", "install", "-L", cp, "--viz-namespace", vizNS}, variant...)...)
			got := kubectlFile(t, c, out, "apply", "--dry-run=server")
			if n, want := strings.Count(got, "(server dry run)"), strings.Count(out, "\n---\n")+1; n != want {
				t.Errorf("kubectl accepted %d objects, the output has %d:\n%s", n, want, got)
			}
			for _, want := range []string{"deployment.apps/metrics-api", "deployment.apps/web", "clusterrole.rbac.authorization.k8s.io/" + vizcheck.ClusterRoleName(vizNS, vizcheck.MetricsAPIName)} {
				if !strings.Contains(got, want) {
					t.Errorf("kubectl output lacks %s:\n%s", want, got)
				}
			}
			if prom := strings.Contains(got, "deployment.apps/prometheus"); prom == (len(variant) == 2) {
				t.Errorf("prometheus deployment applied: %v, with %v", prom, variant)
			}
		})
	}

	// For real, then uninstalled.
	vizNS := controlPlaneNamespace(t, "l5d-viz")
	kubectlFile(t, c, mustLinkerd(t, c, "viz", "install", "-L", cp, "--viz-namespace", vizNS), "apply")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	found, err := vizcheck.FindNamespace(ctx, c.Client, "")
	if err != nil || found != vizNS {
		t.Errorf("FindNamespace after install: %q, %v; want %s (by its label)", found, err, vizNS)
	}
	manifest := mustLinkerd(t, c, "viz", "uninstall", "-L", cp, "--viz-namespace", vizNS)
	for _, want := range []string{"kind: Namespace", "kind: ClusterRoleBinding", "name: " + vizcheck.PrometheusConfigName, "name: " + vizcheck.ClusterRoleName(vizNS, vizcheck.PrometheusName)} {
		if !strings.Contains(manifest, want) {
			t.Errorf("viz uninstall output lacks %q:\n%s", want, manifest)
		}
	}
	if strings.Contains(manifest, "PodDisruptionBudget") {
		t.Errorf("viz uninstall lists objects that were not installed:\n%s", manifest)
	}
	if i, j := strings.Index(manifest, "kind: Deployment"), strings.Index(manifest, "kind: Namespace"); i > j {
		t.Error("viz uninstall lists the namespace before its deployments")
	}
	// No controller manager: the namespace stays Terminating, so do not wait.
	kubectlFile(t, c, manifest, "delete", "--wait=false")
	if _, err := c.Client.RbacV1().ClusterRoles().Get(ctx, vizcheck.ClusterRoleName(vizNS, vizcheck.MetricsAPIName), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("metrics-api ClusterRole after uninstall: %v", err)
	}
	if _, err := c.Client.AppsV1().Deployments(vizNS).Get(ctx, vizcheck.MetricsAPIName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("metrics-api Deployment after uninstall: %v", err)
	}
	code, _, stderr = linkerd(t, c, "viz", "uninstall", "-L", cp, "--viz-namespace", "l5d-nothing-here")
	if code == 0 || !strings.Contains(stderr, "l5d-nothing-here") {
		t.Errorf("viz uninstall of a missing namespace: exit %d, stderr %q", code, stderr)
	}
}
