package cmd

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/linkerd-go/linkerd/internal/syncbuf"
	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
)

func TestPolicyFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		inStderr string
	}{
		{"bad default policy", []string{"-default-policy=everyone", "-local-store=" + dir}, "-default-policy"},
		{"bad cluster networks", []string{"-cluster-networks=10.0.0.0/99", "-local-store=" + dir}, "-cluster-networks"},
		{"missing store", []string{"-local-store=" + filepath.Join(dir, "missing")}, "local store"},
		{"both sources", []string{"-local-store=" + dir, "-kubeconfig=x"}, "mutually exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := Execute(context.Background(), append([]string{"policy"}, tt.args...), Env{Stdout: io.Discard, Stderr: &stderr})
			if code != 2 || !strings.Contains(stderr.String(), tt.inStderr) {
				t.Errorf("exit code %d, stderr %q; want 2 and %q", code, stderr.String(), tt.inStderr)
			}
		})
	}
}

// TestPolicyLocal runs the command on a local store and watches a pod's policy.
func TestPolicyLocal(t *testing.T) {
	dir := t.TempDir()
	manifest := `
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: demo, labels: {app: web}}
spec: {containers: [{name: web, image: x, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http, namespace: demo}
spec: {podSelector: {matchLabels: {app: web}}, port: http, accessPolicy: cluster-authenticated}
`
	if err := os.WriteFile(filepath.Join(dir, "demo.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var stderr syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Execute(ctx, []string{"policy", "-addr=" + addr, "-admin-addr=127.0.0.1:0", "-local-store=" + dir, "-default-policy=deny"},
			Env{Stdout: io.Discard, Stderr: &stderr})
	}()
	defer func() { cancel(); <-done }()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	var stream grpc.ServerStreamingClient[policyv1.WorkloadPolicy]
	for {
		stream, err = policyv1.NewInboundPolicyClient(conn).Watch(wctx, &policyv1.WatchRequest{Workload: "demo:web-1"}, grpc.WaitForReady(true))
		if err == nil {
			break
		}
		if wctx.Err() != nil {
			t.Fatalf("no stream: %v\n%s", err, stderr.String())
		}
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v\n%s", err, stderr.String())
		}
		if msg.GetDefault().GetServerName() != "deny" {
			t.Fatalf("default %v, want deny", msg.GetDefault())
		}
		if len(msg.GetPorts()) == 1 && msg.GetPorts()[0].GetPort() == 8080 {
			if a := msg.GetPorts()[0].GetAuthorizations(); len(a) != 1 || a[0].GetName() != "cluster-authenticated" {
				t.Fatalf("port 8080: %v", msg.GetPorts()[0])
			}
			return
		}
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}
