package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/linkerd-go/linkerd/charts"
	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
	"github.com/linkerd-go/linkerd/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// TestWatchKubeAgainstAPIServer: with the chart's CRDs in a real
// kube-apiserver, a 2.11 v1beta1 Server applies, and a subscribed proxy's
// stream gets the Server, then each AuthorizationPolicy change, then its
// namespace's default-inbound-policy annotation.
func TestWatchKubeAgainstAPIServer(t *testing.T) {
	c := cluster.Start(t)
	cluster.RequireKubectl(t)
	chart, err := charts.Load("linkerd-crds")
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := charts.Render(chart, nil, "linkerd-crds", "linkerd")
	if err != nil {
		t.Fatal(err)
	}
	var crds []string
	for _, name := range rendered.Names() {
		if strings.Contains(name, "/policy/") {
			crds = append(crds, rendered[name])
		}
	}
	c.Apply(t, strings.Join(crds, "\n---\n"))
	c.Kubectl(t, "wait", "--for=condition=established", "--timeout=30s", "crd/servers.policy.linkerd.io",
		"crd/authorizationpolicies.policy.linkerd.io", "crd/serverauthorizations.policy.linkerd.io")
	ns := c.Namespace(t)

	pods, err := store.NewKube(c.Client, 0, discard())
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	idx := NewIndex()
	srv := &Server{Index: idx, Pods: pods, Config: inboundpolicy.Config{DefaultPolicy: "all-unauthenticated"}, Log: discard()}
	pods.AddHandler(srv.OnStoreEvent)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- pods.Run(ctx) }()
	go func() { errs <- WatchKube(ctx, dyn, idx, discard()) }()
	defer func() {
		cancel()
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("watch: %v", err)
			}
		}
	}()

	c.Apply(t, fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: %[1]s}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: %[1]s, labels: {app: web}}
spec:
  serviceAccountName: web
  containers: [{name: web, image: web, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web-http, namespace: %[1]s}
spec: {podSelector: {matchLabels: {app: web}}, port: http, proxyProtocol: HTTP/1}
`, ns))
	client := serve(t, srv)
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	stream, err := client.Watch(wctx, &policyv1.WatchRequest{Workload: ns + ":web-0"})
	if err != nil {
		t.Fatal(err)
	}
	next := func(what string, ok func(*policyv1.WorkloadPolicy) bool) {
		t.Helper()
		for {
			msg, err := stream.Recv()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if ok(msg) {
				return
			}
		}
	}
	authzOf := func(m *policyv1.WorkloadPolicy) []*policyv1.Authorization {
		if len(m.GetPorts()) != 1 || m.GetPorts()[0].GetPort() != 8080 || m.GetPorts()[0].GetServerName() != "web-http" {
			return nil
		}
		return m.GetPorts()[0].GetAuthorizations()
	}
	// The Server with its CRD default accessPolicy (deny): no authorization.
	next("the Server", func(m *policyv1.WorkloadPolicy) bool {
		return len(m.GetPorts()) == 1 && m.GetPorts()[0].GetServerName() == "web-http" && len(authzOf(m)) == 0
	})
	c.Apply(t, fmt.Sprintf(`apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-only, namespace: %[1]s}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: web}]
`, ns))
	next("the AuthorizationPolicy", func(m *policyv1.WorkloadPolicy) bool {
		a := authzOf(m)
		return len(a) == 1 && a[0].GetName() == "web-only" && a[0].GetIdentities()[0] == "web."+ns+".serviceaccount.identity.linkerd.cluster.local"
	})
	c.Kubectl(t, "delete", "-n", ns, "authorizationpolicy", "web-only")
	next("the deletion", func(m *policyv1.WorkloadPolicy) bool { return len(m.GetPorts()) == 1 && len(authzOf(m)) == 0 })

	// The namespace's default-inbound-policy annotation sets the pod's default.
	c.Kubectl(t, "annotate", "namespace", ns, "config.linkerd.io/default-inbound-policy=all-authenticated")
	next("the namespace's default", func(m *policyv1.WorkloadPolicy) bool {
		return m.GetDefault().GetServerName() == "all-authenticated"
	})
}
