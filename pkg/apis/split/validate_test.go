package split

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name, yaml string
		wantErr    string // substring; "" means valid
		wantMilli  []int64
	}{
		{"v1alpha1 quantities (2.11)", `
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: web-split, namespace: emojivoto}
spec:
  service: web-svc
  backends:
  - {service: web-svc, weight: 900m}
  - {service: web-v2, weight: 100m}`, "", []int64{900, 100}},
		{"v1alpha2 integers", `
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: web-split}
spec:
  service: web-svc.emojivoto.svc.cluster.local
  backends:
  - {service: web-v1, weight: 90}
  - {service: web-v2, weight: 10}
  matches: [{kind: HTTPRouteGroup, name: canary}]`, "", []int64{90000, 10000}},
		{"a zero weight among others", `
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: s}
spec: {service: a, backends: [{service: b, weight: 0}, {service: c, weight: 1}]}`, "", []int64{0, 1000}},
		{"weights summing to 0", `
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: s}
spec: {service: a, backends: [{service: b, weight: 0}, {service: c, weight: 0}]}`, "spec.backends: the weights sum to 0", nil},
		{"negative weight", `
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: s}
spec: {service: a, backends: [{service: b, weight: -1}]}`, "spec.backends[0].weight", nil},
		{"no apex", `
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: s}
spec: {backends: [{service: b, weight: 1}]}`, "spec.service: required", nil},
		{"bad apex", `
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: s}
spec: {service: Web_Svc, backends: [{service: b, weight: 1}]}`, "spec.service", nil},
		{"no backends", `
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: s}
spec: {service: a}`, "spec.backends: at least one", nil},
		{"backend without a service", `
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: s}
spec: {service: a, backends: [{service: b, weight: 1}, {weight: 1}]}`, "spec.backends[1].service: required", nil},
		{"unknown field", `
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: s}
spec: {service: a, backends: [{service: b, weight: 1, wieght: 2}]}`, "wieght", nil},
		{"unserved version", `
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: s}
spec: {service: a, backends: [{service: b, weight: 1}]}`, "apiVersion", nil},
		{"bad weight", `
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: s}
spec: {service: a, backends: [{service: b, weight: lots}]}`, "decoding TrafficSplit", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := Decode([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decode error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var got []int64
			for _, b := range ts.DeepCopy().Spec.Backends {
				got = append(got, b.Weight.MilliValue())
			}
			if len(got) != len(tt.wantMilli) {
				t.Fatalf("weights %v, want %v", got, tt.wantMilli)
			}
			for i := range got {
				if got[i] != tt.wantMilli[i] {
					t.Errorf("weights %v, want %v", got, tt.wantMilli)
				}
			}
		})
	}
}
