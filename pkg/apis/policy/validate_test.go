package policy

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name, yaml string
		wantErr    string // substring; "" means valid
	}{
		{"server v1beta1 (2.11)", `
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web, namespace: emojivoto}
spec:
  podSelector: {matchLabels: {app: web}}
  port: http
  proxyProtocol: HTTP/1`, ""},
		{"server v1beta3 accessPolicy", `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web}
spec: {podSelector: {}, port: 8080, accessPolicy: all-authenticated}`, ""},
		{"server unknown field", `
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web}
spec: {podSelector: {}, port: 8080, bogus: 1}`, "bogus"},
		{"server bad port", `
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web}
spec: {podSelector: {}, port: 70000}`, "spec.port"},
		{"server bad port name", `
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web}
spec: {podSelector: {}, port: Not_A_Name}`, "spec.port"},
		{"server bad protocol", `
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web}
spec: {podSelector: {}, port: 80, proxyProtocol: HTTP/3}`, "spec.proxyProtocol"},
		{"server unserved version", `
apiVersion: policy.linkerd.io/v9
kind: Server
metadata: {name: web}
spec: {podSelector: {}, port: 80}`, "not served"},
		{"serverauthorization 2.11", `
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: web-ok, namespace: emojivoto}
spec:
  server: {name: web}
  client:
    meshTLS:
      serviceAccounts: [{name: vote-bot}]`, ""},
		{"serverauthorization unauthenticated networks", `
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: probes}
spec:
  server: {selector: {matchLabels: {x: y}}}
  client: {unauthenticated: true, networks: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]}`, ""},
		{"serverauthorization bad cidr", `
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: probes}
spec:
  server: {name: web}
  client: {unauthenticated: true, networks: [{cidr: 10.0.0.0/99}]}`, "spec.client.networks[0].cidr"},
		{"serverauthorization bad identity", `
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: x}
spec:
  server: {name: web}
  client: {meshTLS: {identities: ["web.*.cluster.local"]}}`, "spec.client.meshTLS.identities[0]"},
		{"serverauthorization both server refs", `
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: x}
spec:
  server: {name: web, selector: {}}
  client: {unauthenticated: true}`, "spec.server"},
		{"authorizationpolicy", `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-authz, namespace: emojivoto}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web}
  requiredAuthenticationRefs:
    - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: web-clients}
    - {group: policy.linkerd.io, kind: NetworkAuthentication, name: cluster}`, ""},
		{"authorizationpolicy mesh TLS and service account", `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-authz, namespace: emojivoto}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web}
  requiredAuthenticationRefs:
    - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: web-clients}
    - {kind: ServiceAccount, name: web}`, "spec.requiredAuthenticationRefs[1]: ServiceAccount"},
		{"authorizationpolicy two networks", `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-authz, namespace: emojivoto}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web}
  requiredAuthenticationRefs:
    - {group: policy.linkerd.io, kind: NetworkAuthentication, name: a}
    - {kind: ServiceAccount, name: web}
    - {group: policy.linkerd.io, kind: NetworkAuthentication, name: b}`, "spec.requiredAuthenticationRefs[2]: NetworkAuthentication"},
		{"authorizationpolicy bad target", `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: x}
spec:
  targetRef: {kind: Pod, name: web}
  requiredAuthenticationRefs: []`, "spec.targetRef.kind"},
		{"authorizationpolicy bad ref kind", `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: x}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web}
  requiredAuthenticationRefs: [{kind: Secret, name: s}]`, "spec.requiredAuthenticationRefs[0].kind"},
		{"meshtlsauthentication", `
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: m}
spec: {identities: ["*.emojivoto.serviceaccount.identity.linkerd.cluster.local"]}`, ""},
		{"meshtlsauthentication empty", `
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: m}
spec: {}`, "spec: exactly one"},
		{"networkauthentication", `
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: n}
spec: {networks: [{cidr: 0.0.0.0/0}, {cidr: "::/0"}]}`, ""},
		{"networkauthentication no networks", `
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: n}
spec: {networks: []}`, "spec.networks"},
		{"unknown kind", `
apiVersion: policy.linkerd.io/v1alpha1
kind: Gadget
metadata: {name: n}`, "kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := Decode([]byte(tt.yaml))
			if tt.wantErr == "" {
				if err != nil || obj == nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
