package inject

import (
	"encoding/json"
	"fmt"
	"maps"

	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/charts"
	"github.com/linkerd-go/linkerd/charts/chartvalues"
	"github.com/linkerd-go/linkerd/pkg/version"
)

// Values are chart values: nested maps as Helm and YAML decoding give them.
type Values = map[string]any

// DefaultValues returns the control-plane chart's default values: what an
// installation with no overrides stores in linkerd-config.
func DefaultValues() (Values, error) {
	return charts.Values(charts.ControlPlane)
}

// ParseValues reads an installation's values as stored in the linkerd-config
// ConfigMap (YAML) and fills keys it lacks from the chart defaults, so that
// values written by an older version still render.
func ParseValues(data []byte) (Values, error) {
	v := Values{}
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("parsing installation values: %w", err)
	}
	return WithDefaults(v)
}

// WithDefaults returns a copy of v with the keys it lacks taken from the
// control-plane chart defaults.
func WithDefaults(v Values) (Values, error) {
	defaults, err := DefaultValues()
	if err != nil {
		return nil, err
	}
	return chartutil.CoalesceTables(deepCopy(v), defaults), nil
}

// deepCopy copies nested maps and slices; leaves are shared (they are
// immutable strings, numbers and booleans).
func deepCopy(v Values) Values {
	if v == nil {
		return nil
	}
	out := make(Values, len(v))
	for k, x := range v {
		out[k] = deepCopyAny(x)
	}
	return out
}

func deepCopyAny(x any) any {
	switch t := x.(type) {
	case map[string]any:
		return deepCopy(t)
	case []any:
		s := make([]any, len(t))
		for i := range t {
			s[i] = deepCopyAny(t[i])
		}
		return s
	default:
		return x
	}
}

// withVersion fills linkerdVersion with this build's version when the
// installation does not say.
func withVersion(v Values) Values {
	if chartvalues.String(v, "linkerdVersion") == "" {
		v = maps.Clone(v)
		v["linkerdVersion"] = version.Version
	}
	return v
}

// toValue converts a typed object (e.g. []corev1.EnvVar) to its generic
// JSON form, as values hold it.
func toValue(x any) (any, error) {
	data, err := json.Marshal(x)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return out, nil
}
