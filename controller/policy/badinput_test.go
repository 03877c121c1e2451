package policy

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
)

func unstructuredObjects(t *testing.T, docs ...string) []runtime.Object {
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

func fakeKube(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	kinds := map[schema.GroupVersionResource]string{}
	for _, gvr := range kubeResources {
		kinds[gvr] = "List"
	}
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), kinds, objs...)
}

// TestBadInputFromKube: policy resources that select nothing, name a port
// no container declares, or slipped past validation (an unknown field, an
// identity pattern that cannot match) neither stop the controller nor
// change the pod's policy: its port keeps the default. A valid Server
// added afterwards still reaches the stream.
func TestBadInputFromKube(t *testing.T) {
	kube := fakeKube(unstructuredObjects(t,
		`apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: nothing, namespace: emojivoto}
spec: {podSelector: {matchLabels: {app: gone}}, port: 8080}`,
		`apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-grpc, namespace: emojivoto}
spec: {podSelector: {matchLabels: {app: web-svc}}, port: grpc}`,
		`apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: typo, namespace: emojivoto}
spec: {podSelector: {matchLabels: {app: web-svc}}, port: http, proxyProtocl: HTTP/2}`,
		`apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: wildcards, namespace: emojivoto}
spec: {identities: ["*.*.foo"]}`,
		`apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: orphan, namespace: emojivoto}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: voting-grpc}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: wildcards}]`,
		`apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: missing-server, namespace: emojivoto}
spec: {server: {name: voting-grpc}, client: {unauthenticated: true}}`,
	)...)
	pods := store.NewMemory()
	pods.Apply(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "emojivoto", Labels: map[string]string{"app": "web-svc"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idx := NewIndex()
	srv := &Server{Index: idx, Pods: pods, Config: inboundpolicy.Config{DefaultPolicy: "all-unauthenticated"}}
	done := make(chan error, 1)
	go func() { done <- WatchKube(ctx, kube, idx, discard()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchKube: %v", err)
		}
	}()
	client := serve(t, srv)

	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	stream, err := client.Watch(wctx, &policyv1.WatchRequest{Workload: `{"ns":"emojivoto","pod":"web-1"}`})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	for !idx.Synced() {
		select {
		case <-wctx.Done():
			t.Fatal("the index never synced")
		case <-time.After(10 * time.Millisecond):
		}
	}
	res, _ := idx.Snapshot()
	def, ports := inboundpolicy.Resolve(srv.workload(Workload{Namespace: "emojivoto", Pod: "web-1"}, res), res, srv.Config)
	if def.ServerName != "all-unauthenticated" {
		t.Errorf("default %q, want all-unauthenticated", def.ServerName)
	}
	if len(ports) != 0 {
		t.Errorf("ports = %+v: no Server selects port 8080 of web-1 by a declared name, the default must apply", ports)
	}
	if d := msg.GetDefault().GetServerName(); d != "all-unauthenticated" || len(msg.GetPorts()) != 0 {
		t.Errorf("streamed policy = %v, want the all-unauthenticated default and no port policy", msg)
	}

	// Still serving: a valid Server reaches the stream.
	valid := unstructuredObjects(t, `apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http, namespace: emojivoto}
spec: {podSelector: {matchLabels: {app: web-svc}}, port: http}`)[0].(*unstructured.Unstructured)
	if _, err := kube.Resource(kubeResources[0]).Namespace("emojivoto").Create(ctx, valid, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for len(msg.GetPorts()) == 0 {
		if msg, err = stream.Recv(); err != nil {
			t.Fatalf("waiting for web-http: %v", err)
		}
	}
	if p := msg.GetPorts()[0]; p.GetPort() != 8080 || p.GetServerName() != "web-http" {
		t.Errorf("port policy = %v, want web-http on 8080", p)
	}
}
