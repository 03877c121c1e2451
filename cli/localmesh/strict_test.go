package localmesh

import (
	"strings"
	"testing"
)

func TestCheckSplitsStrict(t *testing.T) {
	for _, tt := range []struct {
		name, doc, wantErr string
	}{
		{"good split and route", `apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec: {ports: [{port: 80}], bogus: ignored}
---
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: s, namespace: demo}
spec: {service: web, backends: [{service: web, weight: 90}, {service: web-v2, weight: 10}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: demo}
spec: {parentRefs: [{name: web, kind: Service}], rules: [{backendRefs: [{name: web-v2, port: 80}]}]}
`, ""},
		{"misspelt split field", `apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: s}
spec: {service: web, backends: [{service: web, wieght: 1}]}`, `document 1: decoding TrafficSplit: error unmarshaling JSON: while decoding JSON: json: unknown field "wieght"`},
		{"route in a second document", `apiVersion: v1
kind: ConfigMap
metadata: {name: c}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{matches: [{method: FETCH}]}]}`, "document 2: invalid HTTPRoute: spec.rules[0].matches[0].method"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSplitsStrict([]byte(tt.doc))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("checkSplitsStrict: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
