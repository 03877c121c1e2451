package cmd

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/charts"
)

// manifest is one Kubernetes object rendered by a chart.
type manifest struct {
	// Source is the template that rendered it, e.g.
	// "linkerd-control-plane/templates/identity.yaml".
	Source     string
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	// Text is the object's YAML, as the template wrote it, ending in a
	// line break.
	Text string
}

// kindOrder is the order objects are output in (and applied by kubectl):
// the namespace and CRDs first, then RBAC, then what pods need, then the
// workloads, and the webhooks last, once their service can exist.
var kindOrder = []string{
	"Namespace",
	"CustomResourceDefinition",
	"ServiceAccount",
	"ClusterRole",
	"ClusterRoleBinding",
	"Role",
	"RoleBinding",
	"Secret",
	"ConfigMap",
	"Service",
	"Deployment",
	"PodDisruptionBudget",
	"MutatingWebhookConfiguration",
	"ValidatingWebhookConfiguration",
}

func kindRank(kind string) int {
	if i := slices.Index(kindOrder, kind); i >= 0 {
		return i
	}
	return len(kindOrder)
}

// compareManifests orders by kind (kindOrder), then namespace and name:
// the output does not depend on template file names or map order.
func compareManifests(a, b manifest) int {
	return cmp.Or(
		cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)),
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Source, b.Source),
	)
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// renderChart renders the embedded chart with vals (over its defaults) as
// release in namespace ns, and returns its objects in output order.
func renderChart(chartName string, vals map[string]any, release, ns string) ([]manifest, error) {
	c, err := charts.Load(chartName)
	if err != nil {
		return nil, err
	}
	if vals == nil {
		vals = map[string]any{}
	}
	rendered, err := charts.Render(c, vals, release, ns)
	if err != nil {
		return nil, err
	}
	var out []manifest
	for _, source := range rendered.Names() {
		docs, err := splitManifests(source, rendered[source])
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	slices.SortStableFunc(out, compareManifests)
	return out, nil
}

// splitManifests splits a template's output into its objects, dropping
// empty documents.
func splitManifests(source, text string) ([]manifest, error) {
	var out []manifest
	for _, doc := range docSeparator.Split(text, -1) {
		doc = strings.TrimSpace(doc)
		if !hasContent(doc) {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return nil, fmt.Errorf("%s rendered invalid YAML: %w", source, err)
		}
		if head.Kind == "" || head.APIVersion == "" || head.Metadata.Name == "" {
			return nil, fmt.Errorf("%s rendered an object without apiVersion, kind or metadata.name", source)
		}
		out = append(out, manifest{
			Source:     source,
			APIVersion: head.APIVersion,
			Kind:       head.Kind,
			Namespace:  head.Metadata.Namespace,
			Name:       head.Metadata.Name,
			Text:       doc + "\n", // a block scalar at the end keeps its line break
		})
	}
	return out, nil
}

// hasContent reports whether a YAML document has anything but comments.
func hasContent(doc string) bool {
	for line := range strings.SplitSeq(doc, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return true
		}
	}
	return false
}

// writeManifests writes the objects as a YAML stream (each document headed
// by its source template) or as one JSON List; both are what
// `kubectl apply -f -` takes.
func writeManifests(w io.Writer, docs []manifest, format string) error {
	var buf bytes.Buffer
	switch format {
	case "json":
		items := make([]json.RawMessage, 0, len(docs))
		for _, d := range docs {
			j, err := yaml.YAMLToJSON([]byte(d.Text))
			if err != nil {
				return fmt.Errorf("%s: converting %s %s to JSON: %w", d.Source, d.Kind, d.Name, err)
			}
			items = append(items, j)
		}
		list := struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Items      []json.RawMessage `json:"items"`
		}{"v1", "List", items}
		b, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding JSON: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	default:
		for _, d := range docs {
			fmt.Fprintf(&buf, "---\n# Source: %s\n%s", d.Source, d.Text)
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}
