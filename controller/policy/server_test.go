package policy

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
)

const serverYAML = `
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web-http, namespace: emojivoto}
spec:
  podSelector: {matchLabels: {app: web-svc}}
  port: http
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
`

const authzYAML = `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-only, namespace: emojivoto}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: web}]
`

// TestWatchLocal: a proxy's stream gets the resolved policy of its pod from
// a local directory, and the new one when a file changes.
func TestWatchLocal(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("server.yaml", serverYAML)
	pods := store.NewMemory()
	pods.Apply(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "emojivoto", Labels: map[string]string{"app": "web-svc"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idx := NewIndex()
	srv := &Server{Index: idx, Pods: pods, Config: inboundpolicy.Config{DefaultPolicy: "all-authenticated"}}
	done := make(chan error, 1)
	go func() { done <- WatchDir(ctx, dir, 20*time.Millisecond, idx, discard()) }()
	defer func() { cancel(); <-done }()
	client := serve(t, srv)

	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	stream, err := client.Watch(wctx, &policyv1.WatchRequest{Workload: `{"ns":"emojivoto","pod":"web-1"}`})
	if err != nil {
		t.Fatal(err)
	}
	// Until the directory is read, or after: eventually the Server is there.
	var msg *policyv1.WorkloadPolicy
	for msg == nil || len(msg.Ports) == 0 {
		if msg, err = stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	if d := msg.GetDefault(); d.GetServerName() != "all-authenticated" {
		t.Errorf("default = %v", d)
	}
	p := msg.Ports[0]
	if p.GetPort() != 8080 || p.GetServerName() != "web-http" || len(p.GetAuthorizations()) != 0 {
		t.Fatalf("port policy = %v, want web-http on 8080 without authorizations", p)
	}

	write("authz.yaml", authzYAML)
	if msg, err = stream.Recv(); err != nil {
		t.Fatal(err)
	}
	a := msg.GetPorts()[0].GetAuthorizations()
	if len(a) != 1 || a[0].GetName() != "web-only" || a[0].GetIdentities()[0] != "web.emojivoto.serviceaccount.identity.linkerd.cluster.local" {
		t.Fatalf("after the AuthorizationPolicy: %v", msg)
	}

	// A namespace annotation changes the default of its pods without a
	// Server; a pod's own annotation wins over it.
	write("ns.yaml", `
apiVersion: v1
kind: Namespace
metadata:
  name: emojivoto
  annotations: {config.linkerd.io/default-inbound-policy: deny}
`)
	for msg.GetDefault().GetServerName() != "deny" {
		if msg, err = stream.Recv(); err != nil {
			t.Fatalf("waiting for the namespace's default: %v", err)
		}
	}
	if len(msg.GetDefault().GetAuthorizations()) != 0 {
		t.Errorf("deny default has authorizations: %v", msg.GetDefault())
	}
	pods.Apply(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-2", Namespace: "emojivoto",
		Annotations: map[string]string{"config.linkerd.io/default-inbound-policy": "cluster-authenticated"}}})
	own, err := client.Watch(wctx, &policyv1.WatchRequest{Workload: `{"ns":"emojivoto","pod":"web-2"}`})
	if err != nil {
		t.Fatal(err)
	}
	if msg, err = own.Recv(); err != nil {
		t.Fatal(err)
	}
	if d := msg.GetDefault().GetServerName(); d != "cluster-authenticated" {
		t.Errorf("pod annotated cluster-authenticated in a deny namespace: default %q", d)
	}

	// A bad workload is refused.
	bad, err := client.Watch(wctx, &policyv1.WatchRequest{Workload: "nonsense"})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad workload: %v, want InvalidArgument", err)
	}
}

func TestDecodeAllRefusesBadPolicy(t *testing.T) {
	_, err := DecodeAll([]byte(`
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web}
spec: {podSelector: {}, port: 0}
`))
	if err == nil {
		t.Fatal("accepted a Server with port 0")
	}
}

func serve(t *testing.T, srv *Server) policyv1.InboundPolicyClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	policyv1.RegisterInboundPolicyServer(gs, srv)
	go func() { _ = gs.Serve(lis) }() // stopped below
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return policyv1.NewInboundPolicyClient(conn)
}

// TestHTTPRouteAuthorization: an HTTPRoute whose parent is a Server, from
// manifests, reaches the port's policy with the AuthorizationPolicy
// targeting it, and a Namespace's annotations reach the workload's default.
func TestHTTPRouteAuthorization(t *testing.T) {
	objs, err := DecodeAll([]byte(serverYAML + `
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: vote, namespace: emojivoto}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: web-http}]
  rules: [{matches: [{path: {type: Exact, value: /api/vote}, method: POST}]}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: voters, namespace: emojivoto}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: vote}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: vote-bot}]
---
apiVersion: v1
kind: Namespace
metadata: {name: emojivoto, annotations: {config.linkerd.io/default-inbound-policy: cluster-authenticated}}
`))
	if err != nil {
		t.Fatal(err)
	}
	idx := NewIndex()
	idx.Replace(objs)
	pods := store.NewMemory()
	pods.Apply(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "emojivoto", Labels: map[string]string{"app": "web-svc"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	})
	srv := &Server{Index: idx, Pods: pods}
	res, _ := idx.Snapshot()
	def, ports := inboundpolicy.Resolve(srv.workload(Workload{Namespace: "emojivoto", Pod: "web-1"}, res), res, srv.Config)
	if def.ServerName != "cluster-authenticated" {
		t.Errorf("default %q, want the namespace's cluster-authenticated", def.ServerName)
	}
	if len(ports) != 1 || len(ports[0].Routes) != 1 {
		t.Fatalf("ports = %+v, want web-http with one route", ports)
	}
	r := ports[0].Routes[0]
	if r.Name != "vote" || len(r.Authorizations) != 1 || r.Authorizations[0].Name != "voters" {
		t.Errorf("route = %+v, want vote authorized by voters", r)
	}
}
