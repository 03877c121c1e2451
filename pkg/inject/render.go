package inject

import (
	"encoding/json"
	"fmt"
	"sync"

	"helm.sh/helm/v3/pkg/chart"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/charts"
)

// patchTemplate is the patch chart's only manifest.
const patchTemplate = charts.Patch + "/templates/patch.yaml"

// loadPatchChart loads the embedded patch chart once per process.
var loadPatchChart = sync.OnceValues(func() (*chart.Chart, error) {
	return charts.Load(charts.Patch)
})

// fragment is what the patch chart renders: the pieces added to a pod, as
// generic maps so that they reach the pod exactly as the templates wrote them.
type fragment struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
		Labels      map[string]string `json:"labels"`
	} `json:"metadata"`
	InitContainers []map[string]any `json:"initContainers"`
	Containers     []map[string]any `json:"containers"`
	Volumes        []map[string]any `json:"volumes"`
}

// render renders the patch chart with the pod's values.
func render(values Values) (*fragment, error) {
	c, err := loadPatchChart()
	if err != nil {
		return nil, err
	}
	out, err := charts.Render(c, values, "linkerd-inject", "")
	if err != nil {
		return nil, err
	}
	text, ok := out[patchTemplate]
	if !ok {
		return nil, fmt.Errorf("chart %s rendered no %s", charts.Patch, patchTemplate)
	}
	f := &fragment{}
	useNumber := func(d *json.Decoder) *json.Decoder { d.UseNumber(); return d }
	if err := yaml.Unmarshal([]byte(text), f, useNumber); err != nil {
		return nil, fmt.Errorf("parsing the rendered %s: %w", patchTemplate, err)
	}
	return f, nil
}
