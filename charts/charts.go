// Package charts embeds the project's Helm charts and renders them with
// Helm's own engine. `linkerd install` renders linkerd-crds and
// linkerd-control-plane, `linkerd viz install` linkerd-viz; the proxy
// injector and `linkerd inject` render the patch chart, so the proxy
// container is defined once, in the partials library chart, for both.
package charts

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/yaml"
)

// Chart names.
const (
	ControlPlane = "linkerd-control-plane"
	CRDs         = "linkerd-crds"
	Patch        = "patch"
	Partials     = "partials"
	Viz          = "linkerd-viz"
)

//go:embed all:linkerd-control-plane all:linkerd-crds all:linkerd-viz all:partials all:patch
var files embed.FS

// Load returns the named chart from the embedded files, with its
// file://../<name> dependencies (the partials library) attached, as
// `helm dependency build` would vendor them.
func Load(name string) (*chart.Chart, error) {
	c, err := loadDir(name)
	if err != nil {
		return nil, err
	}
	for _, dep := range c.Metadata.Dependencies {
		local, ok := strings.CutPrefix(dep.Repository, "file://../")
		if !ok {
			return nil, fmt.Errorf("chart %s: dependency %s: only file://../ repositories are embedded", name, dep.Name)
		}
		d, err := Load(local)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", name, err)
		}
		c.AddDependency(d)
	}
	return c, nil
}

func loadDir(name string) (*chart.Chart, error) {
	var bufs []*loader.BufferedFile
	err := fs.WalkDir(files, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		bufs = append(bufs, &loader.BufferedFile{Name: strings.TrimPrefix(p, name+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading embedded chart %s: %w", name, err)
	}
	c, err := loader.LoadFiles(bufs)
	if err != nil {
		return nil, fmt.Errorf("loading embedded chart %s: %w", name, err)
	}
	return c, nil
}

// WriteChart writes the embedded chart name into dir/name, with its
// file://../ dependencies vendored into its charts/ directory as `helm
// dependency build` leaves them (unpacked), and returns the chart's
// directory: what the helm CLI installs from a checkout.
func WriteChart(dir, name string) (string, error) {
	c, err := loadDir(name)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, name)
	if err := copyDir(name, dst); err != nil {
		return "", err
	}
	for _, dep := range c.Metadata.Dependencies {
		local, ok := strings.CutPrefix(dep.Repository, "file://../")
		if !ok {
			return "", fmt.Errorf("chart %s: dependency %s: only file://../ repositories are embedded", name, dep.Name)
		}
		if err := copyDir(local, filepath.Join(dst, "charts", dep.Name)); err != nil {
			return "", err
		}
	}
	return dst, nil
}

// copyDir copies the embedded directory from to the directory to.
func copyDir(from, to string) error {
	err := fs.WalkDir(files, from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(to, filepath.FromSlash(strings.TrimPrefix(p, from)))
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
		return fmt.Errorf("writing chart %s to %s: %w", from, to, err)
	}
	return nil
}

// ReadFile returns a file of the embedded charts, e.g.
// "linkerd-control-plane/values-ha.yaml".
func ReadFile(name string) ([]byte, error) {
	return files.ReadFile(path.Clean(name))
}

// Values returns the chart's default values (its values.yaml).
func Values(name string) (map[string]any, error) {
	data, err := ReadFile(name + "/values.yaml")
	if err != nil {
		return nil, err
	}
	v := map[string]any{}
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("parsing %s/values.yaml: %w", name, err)
	}
	return v, nil
}

// Rendered is a rendered chart: template path -> manifest text, without
// partials (files whose name starts with "_") and empty outputs.
type Rendered map[string]string

// Names returns the rendered template paths in a stable order: CRDs and
// namespaces first follow from the templates' own file names.
func (r Rendered) Names() []string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Render renders the chart with values (coalesced with the chart's
// defaults) for a release called releaseName in namespace.
func Render(c *chart.Chart, values map[string]any, releaseName, namespace string) (Rendered, error) {
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: namespace, IsInstall: true, Revision: 1}
	rv, err := chartutil.ToRenderValues(c, values, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("chart %s: values: %w", c.Name(), err)
	}
	out, err := engine.Render(c, rv)
	if err != nil {
		return nil, fmt.Errorf("rendering chart %s: %w", c.Name(), err)
	}
	r := Rendered{}
	for name, text := range out {
		if strings.HasPrefix(path.Base(name), "_") || strings.TrimSpace(text) == "" {
			continue
		}
		r[name] = text
	}
	return r, nil
}
