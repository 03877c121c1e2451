package charts

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/pkg/pki"
)

// writeChart writes the embedded chart name to dir/name, with its
// file://../ dependencies vendored in its charts/ directory, as `helm
// dependency build` leaves a chart. It returns the chart's directory.
func writeChart(t *testing.T, dir, name string) string {
	t.Helper()
	c, err := loadDir(name)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	copyEmbedded(t, name, dst)
	for _, dep := range c.Metadata.Dependencies {
		local, ok := strings.CutPrefix(dep.Repository, "file://../")
		if !ok {
			t.Fatalf("%s: dependency %s is not file://../", name, dep.Name)
		}
		copyEmbedded(t, local, filepath.Join(dst, "charts", dep.Name))
	}
	return dst
}

func copyEmbedded(t *testing.T, from, to string) {
	t.Helper()
	err := fs.WalkDir(files, from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(to, strings.TrimPrefix(p, from))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copying chart %s: %v", from, err)
	}
}

// installValues are the values `linkerd install` adds: certificates (here
// generated) and the version.
func installValues(t *testing.T) map[string]any {
	t.Helper()
	anchor, err := pki.NewCA("root.linkerd.cluster.local", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := anchor.NewIssuer("identity.linkerd.cluster.local", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.EncodePrivateKeyPEM(issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	anchors := string(pki.EncodeCertificatesPEM(anchor.Cert))
	crt := string(pki.EncodeCertificatesPEM(issuer.Cert))
	return map[string]any{
		"linkerdVersion":          "lint",
		"identityTrustAnchorsPEM": anchors,
		"identity": map[string]any{"issuer": map[string]any{"tls": map[string]any{
			"crtPEM": crt, "keyPEM": string(key),
		}}},
		// Any PEM certificate and key do for linting.
		"proxyInjector":    map[string]any{"crtPEM": crt, "keyPEM": string(key), "caBundle": anchors},
		"profileValidator": map[string]any{"crtPEM": crt, "keyPEM": string(key), "caBundle": anchors},
	}
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
