package cmd

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	controllerpolicy "github.com/linkerd-go/linkerd/controller/policy"
	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/internal/golden"
	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
)

const diagnosticsPolicyManifests = `
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web-http, namespace: emojivoto}
spec: {podSelector: {matchLabels: {app: web-svc}}, port: http, proxyProtocol: HTTP/1}
---
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: probes, namespace: emojivoto}
spec:
  server: {name: web-http}
  client: {unauthenticated: true, networks: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: vote-bot, namespace: emojivoto}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: vote-bot}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-admin, namespace: emojivoto}
spec: {podSelector: {matchLabels: {app: web-svc}}, port: 9000}
`

// startPolicy serves the policy API over the manifests and one pod, emojivoto/web-0.
func startPolicy(t *testing.T) string {
	t.Helper()
	return startPolicyWith(t, diagnosticsPolicyManifests)
}

// startPolicyWith serves the policy API over manifests and one pod, emojivoto/web-0.
func startPolicyWith(t *testing.T, manifests string) string {
	t.Helper()
	objs, err := controllerpolicy.DecodeAll([]byte(manifests))
	if err != nil {
		t.Fatal(err)
	}
	idx := controllerpolicy.NewIndex()
	idx.Replace(objs)
	pods := store.NewMemory()
	pods.Apply(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "emojivoto", Labels: map[string]string{"app": "web-svc"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	})
	cluster, _ := inboundpolicy.ParseNetworks("10.0.0.0/8")
	srv := &controllerpolicy.Server{Index: idx, Pods: pods, Config: inboundpolicy.Config{DefaultPolicy: "cluster-authenticated", ClusterNetworks: cluster}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	policyv1.RegisterInboundPolicyServer(gs, srv)
	go func() { _ = gs.Serve(lis) }() // stopped at cleanup
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// TestDiagnosticsPolicyGolden runs `linkerd diagnostics policy` against a
// real policy server. Regenerate with: go test ./cli/cmd -update
func TestDiagnosticsPolicyGolden(t *testing.T) {
	addr := startPolicy(t)
	tests := []struct {
		name string
		args []string
	}{
		{"diagnostics_policy_server", []string{"-n", "emojivoto", "web-0", "8080"}},
		{"diagnostics_policy_no_authorization", []string{"-n", "emojivoto", "web-0", "9000"}},
		{"diagnostics_policy_default", []string{"-n", "emojivoto", "web-0", "7000"}},
		{"diagnostics_policy_json", []string{"-n", "emojivoto", "-o", "json", "web-0", "8080"}},
		{"diagnostics_policy_bad_port", []string{"web-0", "http"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), append([]string{"diagnostics", "policy", "--policy-addr", addr}, tt.args...),
				Env{Stdout: &stdout, Stderr: &stderr})
			golden.Check(t, tt.name, strings.ReplaceAll(golden.Result(code, stdout.String(), stderr.String()), addr, "ADDR"))
			if (stderr.Len() > 0) != (code != 0) {
				t.Errorf("exit %d with stderr %q", code, stderr.String())
			}
		})
	}
}
