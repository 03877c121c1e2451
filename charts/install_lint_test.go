package charts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/charts/chartstest"
)

// writeChart writes the embedded chart name to dir/name as `helm
// dependency build` leaves it (see WriteChart) and returns its directory.
func writeChart(t *testing.T, dir, name string) string {
	t.Helper()
	path, err := WriteChart(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// installValues are the values `linkerd install` adds: certificates (here
// generated) and the version.
func installValues(t *testing.T) map[string]any {
	t.Helper()
	id, err := chartstest.NewIdentity(time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	anchors, crt, key := string(id.AnchorsPEM), string(id.IssuerCertPEM), string(id.IssuerKeyPEM)
	return map[string]any{
		"linkerdVersion":          "lint",
		"identityTrustAnchorsPEM": anchors,
		"identity": map[string]any{"issuer": map[string]any{"tls": map[string]any{
			"crtPEM": crt, "keyPEM": key,
		}}},
		// Any PEM certificate and key do for linting.
		"proxyInjector":    map[string]any{"crtPEM": crt, "keyPEM": key, "caBundle": anchors},
		"profileValidator": map[string]any{"crtPEM": crt, "keyPEM": key, "caBundle": anchors},
	}
}

// identityOnly returns vals without the webhook certificates.
func identityOnly(vals map[string]any) map[string]any {
	delete(vals, "proxyInjector")
	delete(vals, "profileValidator")
	return vals
}

// TestLintInstallCharts runs Helm's linter (what `helm lint` runs) on the
// charts `linkerd install` renders, with default and HA values: any
// warning or error fails.
func TestLintInstallCharts(t *testing.T) {
	dir := t.TempDir()
	ha := map[string]any{}
	b, err := ReadFile(ControlPlane + "/values-ha.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &ha); err != nil {
		t.Fatalf("values-ha.yaml: %v", err)
	}
	haValues := chartutil.CoalesceTables(installValues(t), ha)

	kube, err := chartutil.ParseKubeVersion("v1.36.3")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		chart  string
		values map[string]any
	}{
		{"crds", CRDs, map[string]any{}},
		{"control plane", ControlPlane, installValues(t)},
		{"control plane ha", ControlPlane, haValues},
		// helm install users give the identity only: the chart generates
		// the webhook certificates.
		{"control plane helm", ControlPlane, identityOnly(installValues(t))},
		{"control plane helm ha", ControlPlane, chartutil.CoalesceTables(identityOnly(installValues(t)), ha)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chartDir := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			path := writeChart(t, chartDir, tc.chart)
			linter := lint.AllWithKubeVersion(path, tc.values, "linkerd", kube)
			if len(linter.Messages) == 0 {
				t.Log("no lint messages")
			}
			for _, m := range linter.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint (info): %s", m)
				}
			}
		})
	}

	// The linter must catch a template that renders invalid YAML (a
	// missing value is only information to it: lint mode skips fail and
	// required).
	t.Run("broken template is an error", func(t *testing.T) {
		path := writeChart(t, filepath.Join(dir, "broken"), ControlPlane)
		bad := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: [{{ .Values.controllerLogLevel }}\n"
		if err := os.WriteFile(filepath.Join(path, "templates", "broken.yaml"), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		linter := lint.AllWithKubeVersion(path, installValues(t), "linkerd", kube)
		if linter.HighestSeverity < support.ErrorSev {
			t.Errorf("lint of a broken template: highest severity %d, want an error: %v", linter.HighestSeverity, linter.Messages)
		}
	})
}
