package kubeinstall

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/charts"
	"github.com/linkerd-go/linkerd/charts/chartstest"
	"github.com/linkerd-go/linkerd/pkg/pki"
	"github.com/linkerd-go/linkerd/test/cluster"
)

// helmRender writes the embedded chart into dir as `helm dependency build`
// leaves it (once per chart) and renders it as `helm install` with in
// would, for the cluster's Kubernetes version. It returns the manifest.
func helmRender(t *testing.T, dir, chart string, in chartstest.Install) string {
	t.Helper()
	chartDir := filepath.Join(dir, chart)
	if _, err := os.Stat(chartDir); os.IsNotExist(err) {
		if chartDir, err = charts.WriteChart(dir, chart); err != nil {
			t.Fatal(err)
		}
	}
	in.KubeVersion = cluster.Version
	manifests, err := in.Render(chartDir)
	if err != nil {
		t.Fatalf("helm install %s %s -n %s: %v", in.Release, chart, in.Namespace, err)
	}
	return chartstest.Join(manifests)
}

// identityFiles writes a trust anchor, an issuer it signs and the issuer's
// key into dir, and returns the --set-file arguments giving them to the
// control-plane chart.
func identityFiles(t *testing.T, dir string) []string {
	t.Helper()
	_, files := chartstest.WriteIdentity(t, dir, pki.DefaultAnchorLifetime, pki.DefaultIssuerLifetime)
	return files.SetFile()
}

// createNamespace creates ns, as `helm install --create-namespace` does,
// and deletes it when the test ends.
func createNamespace(t *testing.T, c *cluster.Cluster, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", ns, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	})
}
