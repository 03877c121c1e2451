package policy

import (
	"strings"
	"testing"
	"time"
)

func TestDecodeHTTPRoute(t *testing.T) {
	tests := []struct {
		name, yaml string
		wantErr    string // substring; "" means valid
	}{
		{"policy v1beta3 server route", `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: authors-get, namespace: booksapp}
spec:
  parentRefs: [{name: authors, kind: Server, group: policy.linkerd.io}]
  rules:
  - matches:
    - path: {value: /authors.json}
      method: GET
    - path: {type: PathPrefix, value: /authors/}
      headers: [{name: x-user, value: alice}]
      queryParams: [{type: RegularExpression, name: page, value: "[0-9]+"}]`, ""},
		{"policy v1alpha1 still served", `
apiVersion: policy.linkerd.io/v1alpha1
kind: HTTPRoute
metadata: {name: r}
spec: {parentRefs: [{name: authors, kind: Server}]}`, ""},
		{"gateway v1 canary on a Service (GAMMA)", `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-canary}
spec:
  parentRefs: [{name: web-svc, kind: Service, group: core, port: 80}]
  rules:
  - matches: [{headers: [{name: x-canary, value: "1"}]}]
    backendRefs: [{name: web-v2, port: 80}]
  - backendRefs:
    - {name: web-v1, port: 80, weight: 90}
    - {name: web-v2, port: 80, weight: 10}
    timeouts: {request: 10s, backendRequest: 2s}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-route, value: canary}]}`, ""},
		{"gateway v1beta1 with a Gateway parent", `
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: r}
spec: {parentRefs: [{name: gw, kind: Gateway, group: gateway.networking.k8s.io}]}`, ""},
		{"unserved gateway version", `
apiVersion: gateway.networking.k8s.io/v1alpha9
kind: HTTPRoute
metadata: {name: r}
spec: {}`, "not served"},
		{"other group", `
apiVersion: example.com/v1
kind: HTTPRoute
metadata: {name: r}
spec: {}`, "apiVersion"},
		{"unknown field", `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r}
spec: {rulez: []}`, "rulez"},
		{"policy parent not a Server or Service", `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r}
spec: {parentRefs: [{name: x, kind: Deployment, group: apps}]}`, "spec.parentRefs[0].kind"},
		{"parent without a name", `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r}
spec: {parentRefs: [{kind: Server}]}`, "spec.parentRefs[0].name"},
		{"relative path", `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{matches: [{path: {type: Exact, value: api}}]}]}`, "spec.rules[0].matches[0].path.value"},
		{"bad path type", `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{matches: [{path: {type: Glob, value: /x}}]}]}`, "spec.rules[0].matches[0].path.type"},
		{"bad header regex", `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{}, {matches: [{}, {headers: [{type: RegularExpression, name: x, value: "a(("}]}]}]}`, "spec.rules[1].matches[1].headers[0].value"},
		{"header without a name", `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{matches: [{headers: [{value: x}]}]}]}`, "spec.rules[0].matches[0].headers[0].name"},
		{"bad method", `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{matches: [{method: get}]}]}`, "spec.rules[0].matches[0].method"},
		{"weights sum to 0", `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{backendRefs: [{name: a, port: 80, weight: 0}]}]}`, "spec.rules[0].backendRefs: the weights sum to 0"},
		{"weight out of range", `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{backendRefs: [{name: a, port: 80, weight: -1}]}]}`, "spec.rules[0].backendRefs[0].weight"},
		{"backend not a Service", `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{backendRefs: [{name: a, kind: Pod}]}]}`, "spec.rules[0].backendRefs[0].kind"},
		{"backend without a name", `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{backendRefs: [{port: 80}]}]}`, "spec.rules[0].backendRefs[0].name"},
		{"bad timeout", `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{timeouts: {request: 10 seconds}}]}`, "spec.rules[0].timeouts.request"},
		{"backend timeout over the request timeout", `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{timeouts: {request: 1s, backendRequest: 2s}}]}`, "spec.rules[0].timeouts.backendRequest"},
		{"filter without its field", `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{filters: [{type: URLRewrite}]}]}`, "spec.rules[0].filters[0]: type URLRewrite without its urlRewrite field"},
		{"unknown filter", `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{filters: [{type: Teleport}]}]}`, "spec.rules[0].filters[0].type"},
		{"bad redirect status", `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r}
spec: {rules: [{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 307}}]}]}`, "spec.rules[0].filters[0].requestRedirect.statusCode"},
		{"bad hostname", `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r}
spec: {hostnames: [web.svc, "*"]}`, "spec.hostnames[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := Decode([]byte(tt.yaml))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				r, ok := obj.(*HTTPRoute)
				if !ok {
					t.Fatalf("Decode returned %T, want *HTTPRoute", obj)
				}
				if c := r.DeepCopy(); c.Name != r.Name || len(c.Spec.Rules) != len(r.Spec.Rules) {
					t.Errorf("DeepCopy lost content: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestEffectiveWeight(t *testing.T) {
	zero, five := int32(0), int32(5)
	for _, tt := range []struct {
		w    *int32
		want int32
	}{{nil, 1}, {&zero, 0}, {&five, 5}} {
		b := HTTPBackendRef{Weight: tt.w}
		if got := b.EffectiveWeight(); got != tt.want {
			t.Errorf("EffectiveWeight(%v) = %d, want %d", tt.w, got, tt.want)
		}
	}
}

func TestParseGatewayDuration(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10s", 10 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"500ms", 500 * time.Millisecond, true},
		{"1.5s", 0, false},
		{"", 0, false},
		{"123456s", 0, false},
	} {
		got, err := ParseGatewayDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseGatewayDuration(%q) = %v, %v; want %v (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
