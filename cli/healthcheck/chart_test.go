package healthcheck

import (
	"slices"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/charts"
	"sigs.k8s.io/yaml"
)

// TestExpectedCRDsMatchChart keeps expectedCRDs equal to the
// CustomResourceDefinitions `linkerd install --crds` renders.
func TestExpectedCRDsMatchChart(t *testing.T) {
	c, err := charts.Load(charts.CRDs)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := charts.Render(c, nil, "linkerd-crds", "linkerd")
	if err != nil {
		t.Fatal(err)
	}
	var inChart []string
	for _, name := range rendered.Names() {
		for doc := range strings.SplitSeq(rendered[name], "\n---") {
			var obj struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if obj.Kind == "CustomResourceDefinition" {
				inChart = append(inChart, obj.Metadata.Name)
			}
		}
	}
	var expected []string
	for _, c := range expectedCRDs {
		expected = append(expected, c.String())
	}
	slices.Sort(inChart)
	slices.Sort(expected)
	if !slices.Equal(inChart, expected) {
		t.Errorf("the linkerd-crds chart renders %v, the check expects %v", inChart, expected)
	}
}
