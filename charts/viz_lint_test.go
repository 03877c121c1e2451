package charts

import (
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/charts/chartstest"
)

// TestLintVizChart runs Helm's linter on the linkerd-viz chart with the
// values `linkerd viz install` uses (default, HA, an external Prometheus)
// and as helm users install it: any warning or error fails.
func TestLintVizChart(t *testing.T) {
	kube, err := chartutil.ParseKubeVersion("v1.36.3")
	if err != nil {
		t.Fatal(err)
	}
	ha := map[string]any{}
	b, err := ReadFile(Viz + "/values-ha.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &ha); err != nil {
		t.Fatalf("values-ha.yaml: %v", err)
	}
	cli := map[string]any{"installNamespace": true, "linkerdVersion": "lint"}
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		values map[string]any
	}{
		{"viz", cli},
		{"viz ha", chartutil.CoalesceTables(map[string]any{"installNamespace": true}, ha)},
		{"viz external prometheus", map[string]any{"prometheusUrl": "http://prometheus.monitoring:9090", "grafana": map[string]any{"url": "http://grafana.monitoring:3000"}}},
		{"viz helm", map[string]any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeChart(t, filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")), Viz)
			linter := lint.AllWithKubeVersion(path, tc.values, "linkerd-viz", kube)
			for _, m := range linter.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint (info): %s", m)
				}
			}
		})
	}
}

// TestVizHelmInstall renders the chart as `helm install linkerd-viz
// charts/linkerd-viz -n monitoring` would: everything in the release
// namespace, no Namespace object, and -f values-ha.yaml applies.
func TestVizHelmInstall(t *testing.T) {
	path := writeChart(t, t.TempDir(), Viz)
	for _, tc := range []struct {
		name   string
		values []string
		want   []string
	}{
		{"default", nil, []string{"replicas: 1", "namespace: monitoring", "prometheus.monitoring.svc.cluster.local:9090"}},
		{"ha", []string{filepath.Join(path, "values-ha.yaml")}, []string{"replicas: 3", "kind: PodDisruptionBudget"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			manifests, err := chartstest.Install{Release: "linkerd-viz", Namespace: "monitoring", Values: tc.values, KubeVersion: "v1.36.3"}.Render(path)
			if err != nil {
				t.Fatal(err)
			}
			out := chartstest.Join(manifests)
			if strings.Contains(out, "kind: Namespace") {
				t.Error("the helm install renders a Namespace: --create-namespace would clash with it")
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("rendered chart lacks %q", w)
				}
			}
		})
	}
}
