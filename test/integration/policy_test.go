package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd/internal/testnet"
)

// policyManifests: the server pod, a Server per app port, and one
// AuthorizationPolicy (for the namespace's Servers) allowing only the web
// service account.
func policyManifests(serverIP string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: %[1]s, labels: {app: server}}
spec:
  containers:
  - name: app
    image: testapp
    ports: [{name: http, containerPort: %[2]d}, {name: grpc, containerPort: %[3]d}, {name: tcp, containerPort: %[4]d}]
status: {podIP: %[5]s}
---
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: server-http, namespace: %[1]s}
spec: {podSelector: {matchLabels: {app: server}}, port: http, proxyProtocol: HTTP/1}
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: server-grpc, namespace: %[1]s}
spec: {podSelector: {matchLabels: {app: server}}, port: grpc, proxyProtocol: gRPC}
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: server-tcp, namespace: %[1]s}
spec: {podSelector: {matchLabels: {app: server}}, port: tcp}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-only, namespace: %[1]s}
spec:
  targetRef: {kind: Namespace, name: %[1]s}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: web}]
`, appNS, httpPort, grpcPort, tcpPort, serverIP)
}

// TestInboundPolicy: with the policy controller serving the server pod's
// proxy, the web identity gets 200, another meshed client 403 (gRPC
// PERMISSION_DENIED), an unmeshed client 403 and its TCP connection
// closed, the deny counters say so, and the admin port stays reachable.
func TestInboundPolicy(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-controller", "./test/testapp")
	n := testnet.New(t)
	cp := startControlPlane(t, n, bins)
	webPod, otherPod, serverPod, plainPod := n.AddPod("web"), n.AddPod("other"), n.AddPod("server"), n.AddPod("plain")

	dir, err := os.MkdirTemp("", "l5dt-policy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	write(t, filepath.Join(dir, "policy.yaml"), []byte(policyManifests(serverPod.IP.String())), 0o644)
	serverPod.Start(t, testnet.ProcSpec{Name: "policy", Path: bins["linkerd-controller"], Args: []string{"policy",
		"-addr", "127.0.0.1:8090", "-admin-addr", "127.0.0.1:9991", "-local-store", dir}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := serverPod.WaitTCP(ctx, "127.0.0.1:8090"); err != nil {
		t.Fatalf("policy controller: %v", err)
	}

	serverID := identityName("server", appNS)
	static := fmt.Sprintf("LINKERD2_PROXY_STATIC_ENDPOINTS=%s=%s", serverPod.IP, serverID)
	web := startMeshedPod(t, webPod, bins, append(cp.proxyEnv(t, "web", appNS, cp.remoteIdentityAddr()), static)...)
	other := startMeshedPod(t, otherPod, bins, append(cp.proxyEnv(t, "other", appNS, cp.remoteIdentityAddr()), static)...)
	server := startMeshedPod(t, serverPod, bins, append(cp.proxyEnv(t, "server", appNS, cp.remoteIdentityAddr()),
		"LINKERD2_PROXY_POLICY_SVC_ADDR=127.0.0.1:8090",
		fmt.Sprintf(`LINKERD2_PROXY_POLICY_WORKLOAD={"ns":%q,"pod":"server"}`, appNS))...)
	plain := &meshedPod{Pod: plainPod} // no proxy, no iptables rules
	server.Start(t, testnet.ProcSpec{
		Name: "app", Path: bins["testapp"],
		Args: []string{"--name", "server", "--http", fmt.Sprint(httpPort), "--grpc", fmt.Sprint(grpcPort), "--tcp", fmt.Sprint(tcpPort)},
	})
	for _, port := range []int{httpPort, grpcPort, tcpPort} {
		if err := server.WaitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			t.Fatalf("app port %d: %v", port, err)
		}
	}
	url := "http://" + server.Addr(httpPort) + "/"
	get := func(p *meshedPod) (int, string, error) {
		c := p.httpClient(false)
		defer c.CloseIdleConnections()
		resp, err := c.Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("l5d-proxy-error"), nil
	}

	// Before the controller's first answer the default (all-unauthenticated)
	// applies; wait for the policy to be in force.
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, err := get(other)
		if err == nil && code == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy not in force after 15s: other got %d %v", code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("http", func(t *testing.T) {
		if code, _, err := get(web); err != nil || code != http.StatusOK {
			t.Errorf("web: %d %v, want 200", code, err)
		}
		if code, reason, err := get(other); err != nil || code != http.StatusForbidden || reason == "" {
			t.Errorf("other: %d %q %v, want 403 with l5d-proxy-error", code, reason, err)
		}
		if code, reason, err := get(plain); err != nil || code != http.StatusForbidden || reason == "" {
			t.Errorf("unmeshed: %d %q %v, want 403 with l5d-proxy-error", code, reason, err)
		}
		server.waitMetric(t, "inbound_http_authz_allow_total", map[string]string{"srv_kind": "server", "srv_name": "server-http",
			"authz_kind": "authorizationpolicy", "authz_name": "web-only", "client_id": identityName("web", appNS)}, 1)
		server.waitMetric(t, "inbound_http_authz_deny_total", map[string]string{"srv_name": "server-http", "client_id": identityName("other", appNS)}, 1)
		server.waitMetric(t, "inbound_http_authz_deny_total", map[string]string{"srv_name": "server-http", "tls": "no_identity"}, 1)
	})

	t.Run("grpc", func(t *testing.T) {
		call := func(p *meshedPod) error {
			conn, err := grpc.NewClient(server.Addr(grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(p.DialTCP))
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = testpb.NewTestServiceClient(conn).UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 10})
			return err
		}
		if err := call(web); err != nil {
			t.Errorf("web: %v", err)
		}
		if err := call(other); status.Code(err) != codes.PermissionDenied {
			t.Errorf("other: %v, want PermissionDenied", err)
		}
	})

	t.Run("tcp", func(t *testing.T) {
		addr := server.Addr(tcpPort)
		if err := tcpEcho(web, addr, "hello\n"); err != nil {
			t.Errorf("web: %v", err)
		}
		if err := tcpEcho(plain, addr, "hello\n"); err == nil {
			t.Error("unmeshed TCP connection was forwarded")
		}
		if err := tcpEcho(other, addr, "hello\n"); err == nil {
			t.Error("other's TCP connection was forwarded")
		}
		server.waitMetric(t, "inbound_tcp_authz_deny_total", map[string]string{"srv_name": "server-tcp", "tls": "no_identity"}, 1)
		server.waitMetric(t, "inbound_tcp_authz_allow_total", map[string]string{"srv_name": "server-tcp", "authz_name": "web-only"}, 1)
	})

	t.Run("admin port reachable", func(t *testing.T) {
		if body, err := plain.adminGetFrom(server, "/ready"); err != nil || body != "ready\n" {
			t.Errorf("unmeshed client to the server's admin port: %q %v", body, err)
		}
	})
}

// adminGetFrom GETs path on another pod's admin port (4191, not redirected).
func (p *meshedPod) adminGetFrom(other *meshedPod, path string) (string, error) {
	c := p.httpClient(false)
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + other.Addr(4191) + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
