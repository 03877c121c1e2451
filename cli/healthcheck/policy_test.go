package healthcheck

import (
	"testing"

	"github.com/linkerd-go/linkerd/internal/golden"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

// policyObjects decodes YAML documents into unstructured objects.
func policyObjects(t *testing.T, docs ...string) []runtime.Object {
	t.Helper()
	var out []runtime.Object
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d), &u.Object); err != nil {
			t.Fatalf("test object %q: %v", d, err)
		}
		out = append(out, u)
	}
	return out
}

func fakeDynamic(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	kinds := map[schema.GroupVersionResource]string{
		serversGVR:              "ServerList",
		serverAuthorizationsGVR: "ServerAuthorizationList",
		authorizationPolicyGVR:  "AuthorizationPolicyList",
		meshTLSAuthnGVR:         "MeshTLSAuthenticationList",
		networkAuthnGVR:         "NetworkAuthenticationList",
	}
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), kinds, objs...)
}

// policyWorld is the healthy world whose web pod declares the container
// port "http".
func policyWorld(t *testing.T) *world {
	t.Helper()
	w := healthyWorld(t)
	web := w.meshedPod(appNS, "web-7f9c6d-xyz12", map[string]string{"app": "web"})
	web.Spec.Containers[1].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	w.replace(web)
	return w
}

const (
	webServer = `apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web-http, namespace: emojivoto}
spec:
  podSelector: {matchLabels: {app: web}}
  port: http
  proxyProtocol: HTTP/1`
	webServerAuthz = `apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: web-public, namespace: emojivoto}
spec:
  server: {name: web-http}
  client: {unauthenticated: true}`
	webPolicy = `apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-meshed, namespace: emojivoto}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs:
  - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: meshed}`
	meshedAuthn = `apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: meshed, namespace: emojivoto}
spec:
  identities: ["*.emojivoto.serviceaccount.identity.linkerd.cluster.local"]`
)

func TestPolicyChecks(t *testing.T) {
	healthy := []string{webServer, webServerAuthz, webPolicy, meshedAuthn}
	tests := []struct {
		name string
		ns   string
		docs []string
		// crdsMissing makes every list of policy resources NotFound.
		crdsMissing bool
		// only211 makes the lists of resources 2.11 has no CRD for NotFound.
		only211 bool
		// noDynamic leaves the State without a dynamic client.
		noDynamic bool
		wants     map[string]want
	}{
		{
			name: "policy_healthy",
			docs: healthy,
			wants: map[string]want{
				"policy resources are valid":               {StatusSuccess, ""},
				"servers select pods and their ports":      {StatusSuccess, ""},
				"authorizations target existing resources": {StatusSuccess, ""},
			},
		},
		{
			name: "policy_bad_input",
			docs: append(healthy,
				// A selector matching nothing.
				`apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: nothing, namespace: emojivoto}
spec: {podSelector: {matchLabels: {app: gone}}, port: 8080}`,
				// A port name no container declares.
				`apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web-grpc, namespace: emojivoto}
spec: {podSelector: {matchLabels: {app: web}}, port: grpc}`,
				// A port number: containers need not declare it.
				`apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web-admin, namespace: emojivoto}
spec: {podSelector: {matchLabels: {app: web}}, port: 9990}`,
				// An unknown field (stored before the CRD's schema pruned it).
				`apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: typo, namespace: emojivoto}
spec: {podSelector: {matchLabels: {app: web}}, port: http, proxyProtocl: HTTP/2}`,
				// An identity pattern that cannot match, created while
				// the webhook was down.
				`apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: wildcards, namespace: emojivoto}
spec: {identities: ["*.*.foo"]}`,
				`apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: missing-server, namespace: emojivoto}
spec: {server: {name: voting-grpc}, client: {unauthenticated: true}}`,
				`apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: selects-none, namespace: emojivoto}
spec: {server: {selector: {matchLabels: {tier: none}}}, client: {unauthenticated: true}}`,
				`apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: missing-target, namespace: emojivoto}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: voting-grpc}
  requiredAuthenticationRefs:
  - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: nobody}
  - {group: policy.linkerd.io, kind: NetworkAuthentication, name: office, namespace: other}`,
				// References to invalid resources: reported once, as invalid.
				`apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: needs-wildcards, namespace: emojivoto}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: typo}
  requiredAuthenticationRefs:
  - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: wildcards}`,
				`apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: typo-public, namespace: emojivoto}
spec: {server: {name: typo}, client: {unauthenticated: true}}`,
			),
			wants: map[string]want{
				"policy resources are valid": {StatusWarning, `Server emojivoto/typo: decoding Server: error unmarshaling JSON: while decoding JSON: json: unknown field "proxyProtocl"
MeshTLSAuthentication emojivoto/wildcards: invalid MeshTLSAuthentication: spec.identities[0]: "*.*.foo" cannot match an identity`},
				"servers select pods and their ports": {StatusWarning, `Server emojivoto/nothing: spec.podSelector matches no pod
Server emojivoto/web-grpc: spec.port "grpc" is not the name of a container port of any selected pod`},
				"authorizations target existing resources": {StatusWarning, `ServerAuthorization emojivoto/missing-server: spec.server.name: Server "voting-grpc" does not exist
ServerAuthorization emojivoto/selects-none: spec.server.selector matches no Server
AuthorizationPolicy emojivoto/missing-target: spec.targetRef: Server "voting-grpc" does not exist
AuthorizationPolicy emojivoto/missing-target: spec.requiredAuthenticationRefs[0]: MeshTLSAuthentication emojivoto/nobody does not exist
AuthorizationPolicy emojivoto/missing-target: spec.requiredAuthenticationRefs[1]: NetworkAuthentication other/office does not exist`},
			},
		},
		{
			// With one namespace checked, references to another cannot be
			// resolved and are not reported.
			name: "policy_one_namespace",
			ns:   appNS,
			docs: append(healthy, `apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: from-office, namespace: emojivoto}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs:
  - {group: policy.linkerd.io, kind: NetworkAuthentication, name: office, namespace: other}`),
			wants: map[string]want{
				"policy resources are valid":               {StatusSuccess, ""},
				"servers select pods and their ports":      {StatusSuccess, ""},
				"authorizations target existing resources": {StatusSuccess, ""},
			},
		},
		{
			// Linkerd 2.11's CRDs: Servers and ServerAuthorizations only.
			name: "policy_2_11_crds", only211: true,
			docs: []string{webServer, webServerAuthz, `apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: missing-server, namespace: emojivoto}
spec: {server: {name: voting-grpc}, client: {unauthenticated: true}}`},
			wants: map[string]want{
				"policy resources are valid":               {StatusSuccess, ""},
				"servers select pods and their ports":      {StatusSuccess, ""},
				"authorizations target existing resources": {StatusWarning, `ServerAuthorization emojivoto/missing-server: spec.server.name: Server "voting-grpc" does not exist`},
			},
		},
		{name: "policy_no_crds", docs: healthy, crdsMissing: true, wants: map[string]want{}},
		{name: "policy_no_dynamic_client", docs: healthy, noDynamic: true, wants: map[string]want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := policyWorld(t).state(tt.ns)
			dyn := fakeDynamic(policyObjects(t, tt.docs...)...)
			if tt.crdsMissing {
				dyn.PrependReactor("list", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewNotFound(a.GetResource().GroupResource(), "")
				})
			}
			if tt.only211 {
				dyn.PrependReactor("list", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
					if gr := a.GetResource().GroupResource(); gr.Resource != "servers" && gr.Resource != "serverauthorizations" {
						return true, nil, apierrors.NewNotFound(gr, "")
					}
					return false, nil, nil
				})
			}
			if !tt.noDynamic {
				s.Dynamic = dyn
			}
			cats := []Category{linkerdPolicyCategory()}
			success, got, ordered := checkResults(t, cats, s)
			if !success {
				t.Errorf("success = false: the policy checks only warn")
			}
			if len(ordered) != len(tt.wants) {
				t.Errorf("%d checks reported, want %d", len(ordered), len(tt.wants))
			}
			assertResults(t, got, tt.wants)

			// The same run again, rendered: what was read is cached on s.
			_, out := runAll(t, cats, s, fastOptions)
			golden.Check(t, tt.name+".table", out[TableOutput])
		})
	}
}
