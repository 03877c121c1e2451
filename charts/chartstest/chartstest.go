// Package chartstest renders a chart directory the way `helm install` (and
// `helm template`) does, for tests of the Helm path: the same value layering
// (-f, --set, --set-file), dependency processing, release options
// (IsInstall, the release namespace), kubeVersion check, engine and
// manifest ordering, without a helm binary or a cluster. Helm's action
// package is not used because its storage and kube client drag in modules
// this repository does not depend on.
package chartstest

import (
	"fmt"
	"os"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/charts/chartvalues"
)

// Install holds the arguments of a `helm install RELEASE CHART_DIR` command line.
type Install struct {
	Release   string   // the release name
	Namespace string   // -n
	Values    []string // -f FILE, in order
	Set       []string // --set KEY=VALUE
	SetFile   []string // --set-file KEY=FILE
	// KubeVersion is the cluster's version ("v1.36.3"); empty means Helm's
	// default, as `helm template` without --kube-version.
	KubeVersion string
}

// Render renders the chart in chartDir as `helm install` with in's
// arguments would, and returns the manifests it would apply, in Helm's
// install order. Hooks are not supported: a chart with hooks is an error.
func (in Install) Render(chartDir string) ([]releaseutil.Manifest, error) {
	c, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", chartDir, err)
	}
	if c.Metadata.Type != "" && c.Metadata.Type != "application" {
		return nil, fmt.Errorf("chart %s is of type %q: it cannot be installed", c.Name(), c.Metadata.Type)
	}
	if err := checkDependencies(c); err != nil {
		return nil, err
	}
	vals, err := in.values()
	if err != nil {
		return nil, err
	}
	if err := chartutil.ProcessDependenciesWithMerge(c, vals); err != nil {
		return nil, fmt.Errorf("chart %s: dependencies: %w", c.Name(), err)
	}

	caps := chartutil.DefaultCapabilities.Copy()
	if in.KubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(in.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("kube version %q: %w", in.KubeVersion, err)
		}
		caps.KubeVersion = *kv
	}
	if c.Metadata.KubeVersion != "" && !chartutil.IsCompatibleRange(c.Metadata.KubeVersion, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c.Metadata.KubeVersion, caps.KubeVersion.String())
	}
	opts := chartutil.ReleaseOptions{Name: in.Release, Namespace: in.Namespace, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValuesWithSchemaValidation(c, vals, opts, caps, false)
	if err != nil {
		return nil, err
	}
	var e engine.Engine
	files, err := e.Render(c, rv)
	if err != nil {
		return nil, err
	}
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("chart %s: parsing the rendered manifests: %w", c.Name(), err)
	}
	if len(hooks) > 0 {
		return nil, fmt.Errorf("chart %s has hooks (%s): chartstest does not run them", c.Name(), hooks[0].Path)
	}
	return manifests, nil
}

// Join returns the manifests as one YAML stream, each document preceded
// by its source as `helm template` prints it.
func Join(manifests []releaseutil.Manifest) string {
	var b strings.Builder
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	return b.String()
}

// checkDependencies fails, as `helm install` does, when a dependency of
// Chart.yaml is not in the chart's charts/ directory (`helm dependency
// build` not run).
func checkDependencies(c *chart.Chart) error {
	var missing []string
	for _, r := range c.Metadata.Dependencies {
		found := false
		for _, d := range c.Dependencies() {
			if d.Name() == r.Name {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, r.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("found in Chart.yaml, but missing in charts/ directory: %s", strings.Join(missing, ", "))
	}
	return nil
}

// values layers the user's values as the helm CLI does: -f files in order,
// then --set, then --set-file.
func (in Install) values() (map[string]any, error) {
	base := map[string]any{}
	for _, f := range in.Values {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("-f: %w", err)
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("-f %s: %w", f, err)
		}
		base = chartvalues.Merge(base, m)
	}
	for _, s := range in.Set {
		if err := strvals.ParseInto(s, base); err != nil {
			return nil, fmt.Errorf("--set %s: %w", s, err)
		}
	}
	for _, s := range in.SetFile {
		read := func(rs []rune) (any, error) {
			b, err := os.ReadFile(string(rs))
			if err != nil {
				return nil, err
			}
			return string(b), nil
		}
		if err := strvals.ParseIntoFile(s, base, read); err != nil {
			return nil, fmt.Errorf("--set-file %s: %w", s, err)
		}
	}
	return base, nil
}
