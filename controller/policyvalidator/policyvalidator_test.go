package policyvalidator

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

func TestAdmit(t *testing.T) {
	servers := metav1.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1beta1", Resource: "servers"}
	tests := []struct {
		name      string
		op        admissionv1.Operation
		resource  metav1.GroupVersionResource
		doc       string
		allowed   bool
		inMessage string
	}{
		{"valid 2.11 server", admissionv1.Create, servers, `apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web, namespace: emojivoto}
spec: {podSelector: {matchLabels: {app: web}}, port: http, proxyProtocol: HTTP/1}`, true, ""},
		{"server with a bad port name", admissionv1.Update, servers, `apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web, namespace: emojivoto}
spec: {podSelector: {}, port: HTTP_PORT}`, false, "spec.port"},
		{"server with an unknown field", admissionv1.Create, servers, `apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web, namespace: emojivoto}
spec: {podSelector: {}, port: 80, portt: 81}`, false, "portt"},
		{"authorization policy with a bad target", admissionv1.Create,
			metav1.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "authorizationpolicies"}, `apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: a, namespace: emojivoto}
spec:
  targetRef: {kind: Deployment, name: web}
  requiredAuthenticationRefs: []`, false, "spec.targetRef.kind"},
		{"mesh authentication with an impossible identity", admissionv1.Create,
			metav1.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "meshtlsauthentications"}, `apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: m, namespace: emojivoto}
spec: {identities: ["web.*.cluster.local"]}`, false, "spec.identities[0]"},
		{"delete is allowed", admissionv1.Delete, servers, `apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web}
spec: {podSelector: {}, port: 0}`, true, ""},
		{"other resources are allowed", admissionv1.Create, metav1.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1beta3", Resource: "httplocalratelimitpolicies"},
			`{"kind": "HTTPLocalRateLimitPolicy", "spec": {"bogus": 1}}`, true, ""},
		{"policy HTTPRoute with a bad path regex", admissionv1.Create,
			metav1.GroupVersionResource{Group: "policy.linkerd.io", Version: "v1beta3", Resource: "httproutes"}, `apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r, namespace: emojivoto}
spec:
  parentRefs: [{name: web, kind: Server, group: policy.linkerd.io}]
  rules: [{matches: [{path: {type: RegularExpression, value: "/api/("}}]}]`, false, "spec.rules[0].matches[0].path.value"},
		{"gateway HTTPRoute with weights summing to 0", admissionv1.Create,
			metav1.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: emojivoto}
spec:
  parentRefs: [{name: web-svc, kind: Service, group: core, port: 80}]
  rules: [{backendRefs: [{name: web-v1, port: 80, weight: 0}, {name: web-v2, port: 80, weight: 0}]}]`, false, "spec.rules[0].backendRefs"},
		{"gateway HTTPRoute canary", admissionv1.Update,
			metav1.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: emojivoto}
spec:
  parentRefs: [{name: web-svc, kind: Service, group: core, port: 80}]
  rules: [{backendRefs: [{name: web-v1, port: 80, weight: 90}, {name: web-v2, port: 80, weight: 10}]}]
status: {parents: []}`, true, ""},
		{"other gateway resources are allowed", admissionv1.Create,
			metav1.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"},
			`{"kind": "Gateway", "spec": {"bogus": 1}}`, true, ""},
	}
	s := New(slog.New(slog.DiscardHandler))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := yaml.YAMLToJSON([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			r := s.Admit(context.Background(), &admissionv1.AdmissionRequest{Operation: tt.op, Resource: tt.resource,
				Name: "x", Namespace: "emojivoto", Object: runtime.RawExtension{Raw: raw}})
			if r.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v (%+v)", r.Allowed, tt.allowed, r.Result)
			}
			if !tt.allowed && (r.Result == nil || !strings.Contains(r.Result.Message, tt.inMessage)) {
				t.Errorf("message %+v, want it to name %q", r.Result, tt.inMessage)
			}
		})
	}
}
