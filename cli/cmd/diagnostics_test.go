package cmd

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/controller/destination"
	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/internal/golden"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"google.golang.org/grpc"
)

// diagnosticsManifests is the local store the golden tests query: a meshed
// deployment, a partly ready one, an opaque database with an external
// endpoint, and an empty service.
const diagnosticsManifests = `apiVersion: v1
kind: Service
metadata: {name: web-svc, namespace: emojivoto}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-svc-1
  namespace: emojivoto
  labels: {kubernetes.io/service-name: web-svc}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.42.0.12]
  zone: zone-a
  targetRef: {kind: Pod, name: web-7f9c6-zx2lq}
- addresses: [10.42.0.9]
  zone: zone-b
  targetRef: {kind: Pod, name: web-7f9c6-ab3cd}
- addresses: [10.42.0.99]
  conditions: {ready: false}
  targetRef: {kind: Pod, name: web-7f9c6-notready}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-7f9c6-zx2lq
  namespace: emojivoto
  labels: {linkerd.io/control-plane-ns: linkerd, pod-template-hash: 7f9c6}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-7f9c6, uid: u1, controller: true}]
spec:
  serviceAccountName: web
  containers: [{name: web}, {name: linkerd-proxy}]
status: {phase: Running, podIP: 10.42.0.12}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-7f9c6-ab3cd
  namespace: emojivoto
  labels: {linkerd.io/control-plane-ns: linkerd, pod-template-hash: 7f9c6}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-7f9c6, uid: u1, controller: true}]
spec:
  serviceAccountName: web
  containers: [{name: web}, {name: linkerd-proxy}]
status: {phase: Running, podIP: 10.42.0.9}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: data}
spec:
  clusterIP: 10.96.0.20
  ports: [{port: 5432, targetPort: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  namespace: data
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{name: "", port: 5432}]
endpoints:
- addresses: [10.42.1.5]
  targetRef: {kind: Pod, name: db-0}
- addresses: [192.168.50.4]
---
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  namespace: data
  labels: {linkerd.io/control-plane-ns: linkerd}
  ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: db, uid: u2, controller: true}]
spec:
  serviceAccountName: db
  containers:
  - name: linkerd-proxy
    env: [{name: LINKERD2_PROXY_INBOUND_LISTEN_ADDR, value: "0.0.0.0:4143"}]
status: {phase: Running, podIP: 10.42.1.5}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: emojivoto}
spec:
  ports: [{port: 80}]
`

// startDestination serves the destination API over a local store holding
// manifests, on 127.0.0.1.
func startDestination(t *testing.T, manifests string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "manifests.yaml"), []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := store.NewLocal(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := destination.NewServer(st, destination.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return serveDestination(t, srv, func(ctx context.Context) {
		_ = st.Run(ctx)
	}, func(ctx context.Context) { _ = srv.Run(ctx) })
}

// serveDestination serves srv on 127.0.0.1 with helpers running alongside,
// all stopped when the test ends.
func serveDestination(t *testing.T, srv destinationv1.DestinationServer, helpers ...func(context.Context)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	destinationv1.RegisterDestinationServer(gs, srv)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, h := range helpers {
		wg.Go(func() { h(ctx) })
	}
	wg.Go(func() { _ = gs.Serve(lis) })
	t.Cleanup(func() {
		gs.Stop()
		cancel()
		wg.Wait()
	})
	return lis.Addr().String()
}

// TestDiagnosticsEndpointsGolden runs `linkerd diagnostics endpoints`
// against a real destination server and compares the output with
// testdata/diagnostics_*.golden. Regenerate with: go test ./cli/cmd -update
func TestDiagnosticsEndpointsGolden(t *testing.T) {
	addr := startDestination(t, diagnosticsManifests)
	tests := []struct {
		name string
		args []string
	}{
		{name: "diagnostics_endpoints", args: []string{"web-svc.emojivoto.svc.cluster.local:80"}},
		{name: "diagnostics_endpoints_several", args: []string{"db.data.svc.cluster.local:5432", "web-svc.emojivoto.svc.cluster.local"}},
		{name: "diagnostics_endpoints_by_ip", args: []string{"ep", "10.42.1.5:5432", "10.96.0.10:80"}},
		{name: "diagnostics_endpoints_json", args: []string{"-o", "json", "db.data.svc.cluster.local:5432"}},
		{name: "diagnostics_endpoints_unknown", args: []string{"nope.emojivoto.svc.cluster.local:80"}},
		{name: "diagnostics_endpoints_empty", args: []string{"empty.emojivoto.svc.cluster.local:80"}},
		{name: "diagnostics_endpoints_partly_missing", args: []string{"web-svc.emojivoto.svc.cluster.local:80", "empty.emojivoto.svc.cluster.local"}},
		{name: "diagnostics_endpoints_invalid", args: []string{"web-svc.emojivoto.svc.cluster.local:http"}},
		{name: "diagnostics_endpoints_no_args", args: []string{}},
		{name: "diagnostics_endpoints_bad_output", args: []string{"-o", "yaml", "web-svc.emojivoto.svc.cluster.local"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"diagnostics", "endpoints", "--destination-addr", addr}
			if len(tt.args) > 0 && tt.args[0] == "ep" { // the alias, with "dg"
				args = append([]string{"dg", "ep", "--destination-addr", addr}, tt.args[1:]...)
			} else {
				args = append(args, tt.args...)
			}
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), args, Env{Stdout: &stdout, Stderr: &stderr})
			got := golden.Result(code, stdout.String(), stderr.String())
			// The server's address is the only varying part.
			golden.Check(t, tt.name, strings.ReplaceAll(got, addr, "ADDR"))
			// Independent of the golden files: failures are one line and non-zero.
			if (stderr.Len() > 0) != (code != 0) {
				t.Errorf("exit %d with stderr %q", code, stderr.String())
			}
			if stderr.Len() > 0 && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr is not one line: %q", stderr.String())
			}
		})
	}
}

// silentServer accepts Get and never answers.
type silentServer struct {
	destinationv1.UnimplementedDestinationServer
}

func (silentServer) Get(_ *destinationv1.GetRequest, s grpc.ServerStreamingServer[destinationv1.Update]) error {
	<-s.Context().Done()
	return nil
}

func TestDiagnosticsEndpointsFailures(t *testing.T) {
	silent := serveDestination(t, silentServer{})
	// A port nothing listens on: bind one and close it.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close()

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"timeout", []string{"--destination-addr", silent, "--timeout", "200ms", "web.ns.svc.cluster.local"},
			"Error: no answer from the destination service at " + silent + " within 200ms\n"},
		{"unreachable", []string{"--destination-addr", closed, "--timeout", "5s", "web.ns.svc.cluster.local"},
			"Error: cannot reach the destination service at " + closed + ": "},
		{"bad timeout", []string{"--timeout", "0s", "web.ns.svc.cluster.local"}, "Error: --timeout must be positive, not 0s\n"},
		{"no local mesh", []string{"--state-dir", "/nonexistent/l5d", "web.ns.svc.cluster.local"}, "Error: no local mesh is up at /nonexistent/l5d (run: linkerd local up)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := Execute(context.Background(), append([]string{"diagnostics", "endpoints"}, tt.args...), Env{Stdout: &stdout, Stderr: &stderr})
			if code == 0 || stdout.Len() != 0 {
				t.Errorf("exit %d, stdout %q", code, stdout.String())
			}
			if !strings.HasPrefix(stderr.String(), tt.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr = %q, want prefix %q on one line", stderr.String(), tt.want)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}
