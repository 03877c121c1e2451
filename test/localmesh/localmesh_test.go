// Package localmesh_test runs `linkerd local` end to end: the real CLI,
// control plane, proxies and test apps in network namespaces on this machine.
package localmesh_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/internal/testnet"
)

// cli runs `linkerd local --state-dir ... --bin-dir ...` commands.
type cli struct {
	t        *testing.T
	linkerd  string
	stateDir string
	binDir   string
}

func (c *cli) run(args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	full := append([]string{"local", "--state-dir", c.stateDir, "--bin-dir", c.binDir}, args...)
	cmd := exec.CommandContext(ctx, c.linkerd, full...)
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	c.t.Logf("linkerd %s (%v):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	return string(out), err
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("linkerd local %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (c *cli) state() *localmesh.State {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.stateDir, "state.json"))
	if err != nil {
		c.t.Fatal(err)
	}
	var s localmesh.State
	if err := json.Unmarshal(b, &s); err != nil {
		c.t.Fatal(err)
	}
	return &s
}

func workload(t *testing.T, s *localmesh.State, ns, name string) *localmesh.Workload {
	t.Helper()
	for _, w := range s.Workloads {
		if w.Namespace == ns && w.Name == name {
			return w
		}
	}
	t.Fatalf("no workload %s/%s in state", ns, name)
	return nil
}

// appStatus returns what w's supervisor reports of its application.
func (c *cli) appStatus(w *localmesh.Workload) localmesh.AppStatus {
	c.t.Helper()
	st, err := localmesh.LoadAppStatus(c.stateDir, w.Namespace, w.Name)
	if err != nil {
		c.t.Fatalf("%s: %v", w.Key(), err)
	}
	return st
}

// appPID is the pid of w's running application.
func (c *cli) appPID(w *localmesh.Workload) int {
	c.t.Helper()
	st := c.appStatus(w)
	if !st.Running() {
		c.t.Fatalf("%s: the application is not running: %+v", w.Key(), st)
	}
	return st.PID
}

// waitRestarted waits (bounded) until w's application runs again, ready,
// after at least n restarts, with another pid than old.
func (c *cli) waitRestarted(w *localmesh.Workload, old, n int) localmesh.AppStatus {
	c.t.Helper()
	var st localmesh.AppStatus
	testkit.Eventually(c.t, 30*time.Second, func() error {
		var err error
		st, err = localmesh.LoadAppStatus(c.stateDir, w.Namespace, w.Name)
		if err != nil || st.Restarts < n || !st.Ready || !st.Running() || st.PID == old {
			return fmt.Errorf("%s not restarted (want %d restarts, not pid %d): %+v %v", w.Key(), n, old, st, err)
		}
		return nil
	})
	return st
}

// pids returns every process the mesh's state and app statuses record.
func (c *cli) pids(s *localmesh.State) []int {
	var pids []int
	for _, w := range s.Workloads {
		for _, p := range w.Procs {
			pids = append(pids, p.PID)
		}
		if w.App != nil {
			pids = append(pids, c.appStatus(w).PID)
		}
	}
	return pids
}

// leftovers checks that nothing of the mesh with state s remains: no
// process it recorded (pids) or naming its state directory, no namespace,
// no state, and the host's iptables as they were (rulesBefore).
func (c *cli) leftovers(s *localmesh.State, pids []int, rulesBefore int) {
	c.t.Helper()
	for _, pid := range pids {
		_ = testkit.Poll(5*time.Second, func() error {
			if running(pid) {
				return errors.New("running")
			}
			return nil
		})
		if running(pid) {
			c.t.Errorf("process %d still running after down", pid)
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), c.stateDir) {
			c.t.Errorf("process %s still running after down: %q", e.Name(), strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	if left, err := localmesh.ListNetNS(s.Prefix); err != nil || len(left) != 0 {
		c.t.Errorf("namespaces left after down: %v %v", left, err)
	}
	if _, err := os.Stat(c.stateDir); !os.IsNotExist(err) {
		c.t.Errorf("state dir left after down: %v", err)
	}
	if n := hostProxyInitRules(c.t); n != rulesBefore {
		c.t.Errorf("host iptables has %d PROXY_INIT lines after down, %d before", n, rulesBefore)
	}
}

// inAppMounts runs a command in the network and mount namespaces of w's
// app, with linkerd local exec.
func (c *cli) inAppMounts(w *localmesh.Workload, args ...string) string {
	c.t.Helper()
	return c.must(append([]string{"exec", w.Key(), "--"}, args...)...)
}

// get sends GET url with Host host from inside netns.
func get(netns, url, host string) (int, string, error) {
	c := localmesh.HTTPClient(netns, 10*time.Second)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// echo checks that a TCP echo server answers at addr from netns.
func echo(netns, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := localmesh.DialContext(ctx, netns, "tcp", addr)
	if err != nil {
		return fmt.Errorf("echo %s: %w", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "ping over the second port\n"); err != nil {
		return fmt.Errorf("echo %s: %w", addr, err)
	}
	b := make([]byte, len("ping over the second port\n"))
	if _, err := io.ReadFull(conn, b); err != nil {
		return fmt.Errorf("echo %s: %w", addr, err)
	}
	if string(b) != "ping over the second port\n" {
		return fmt.Errorf("echo %s: got %q", addr, b)
	}
	return nil
}

// metric sums the series of family name in w's proxy whose labels include
// want.
func metric(t *testing.T, w *localmesh.Workload, name string, want map[string]string) float64 {
	t.Helper()
	return scrape(t, w).sum(name, want)
}

// families is one scrape of a proxy's metrics: compare several sums from one
// scrape, not from two, or traffic in between makes them disagree.
type families map[string]*dto.MetricFamily

// scrape reads w's proxy metrics once.
func scrape(t *testing.T, w *localmesh.Workload) families {
	t.Helper()
	_, text, err := get(w.NetNS, "http://127.0.0.1:4191/metrics", "")
	if err != nil {
		t.Fatalf("scrape %s: %v", w.Key(), err)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse metrics of %s: %v", w.Key(), err)
	}
	return fams
}

// sum adds the values of the series of name that carry the want labels.
func (f families) sum(name string, want map[string]string) float64 {
	var sum float64
	fam := f[name]
	if fam == nil {
		return 0
	}
	for _, m := range fam.Metric {
		if hasLabels(m, want) {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// hasLabels reports whether m carries every label of want.
func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.Label {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// waitMetric polls (for 10 s at most) until the metric reaches min.
func waitMetric(t *testing.T, w *localmesh.Workload, name string, labels map[string]string, min float64) {
	t.Helper()
	waitMetricFor(t, w, name, labels, min, 10*time.Second)
}

// waitMetricFor polls, for d at most, until the metric reaches min.
func waitMetricFor(t *testing.T, w *localmesh.Workload, name string, labels map[string]string, min float64, d time.Duration) {
	t.Helper()
	testkit.Eventually(t, d, func() error {
		if v := metric(t, w, name, labels); v < min {
			return fmt.Errorf("%s: %s%v = %v, want >= %v", w.Key(), name, labels, v, min)
		}
		return nil
	})
}

// running reports whether pid is a live (non-zombie) process.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

// hostProxyInitRules counts linkerd-init's chains and rules in the host's
// own iptables tables.
func hostProxyInitRules(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "iptables-save").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v\n%s", err, out)
	}
	return strings.Count(string(out), "PROXY_INIT")
}

func TestLocalMesh(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables", "iptables-save", "unshare", "getent")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd", "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-controller", "./test/testapp")
	// Not t.TempDir: its parent is private and the proxies (uid 2102) read
	// their tokens in the state directory.
	base, err := os.MkdirTemp("", "l5dl-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	// The CLI's environment does not reach the applications (see below).
	t.Setenv("L5D_CLI_ONLY", "1")
	c := &cli{t: t, linkerd: bins["linkerd"], stateDir: filepath.Join(base, "state"), binDir: filepath.Dir(bins["linkerd-proxy"])}
	rulesBefore := hostProxyInitRules(t)
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			_, _ = c.run("down")
		}
	})

	start := time.Now()
	c.must("up")
	t.Logf("control plane up in %v", time.Since(start))
	if out := c.must("up"); !strings.Contains(out, "already up") {
		t.Errorf("second up: %q, want it to report the mesh already up", out)
	}

	testapp := bins["testapp"]
	c.must("run", "--name", "backend", "--namespace", "demo", "--port", "8080", "--",
		testapp, "--name", "backend", "--http", "8080", "--grpc", "0", "--tcp", "0", "--banner", "0")
	// The client app resolves the Service names in its own environment
	// (the pod's /etc/hosts) and logs what it got, then serves.
	c.must("run", "--name", "client", "--namespace", "demo", "--env", "GREETING=hello from client", "--label", "tier=front", "--", "sh", "-c",
		"getent hosts backend.demo.svc.cluster.local; getent hosts backend; exec "+testapp+" --name client --http 9000 --grpc 0 --tcp 0 --banner 0")
	if _, err := c.run("run", "--name", "client", "--namespace", "demo", "--", "true"); err == nil {
		t.Error("a second workload demo/client: want an error")
	}

	s := c.state()
	backend, client := workload(t, s, "demo", "backend"), workload(t, s, "demo", "client")
	vip := s.Services["demo/backend"].String()
	if vip == "" || !strings.HasPrefix(vip, "10.96.") {
		t.Fatalf("backend cluster IP %q, want one from 10.96.0.0/16", vip)
	}

	// Name resolution inside the client app's mount namespace.
	var clientLog string
	_ = testkit.Poll(10*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(c.stateDir, "pods", "demo.client", "app.log"))
		if clientLog = string(b); strings.Count(clientLog, vip) < 2 {
			return errors.New("not resolved yet")
		}
		return nil
	})
	for _, want := range []string{vip + " +backend.demo.svc.cluster.local", vip + " +backend"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(vip) + strings.TrimPrefix(want, vip) + `\b`).MatchString(clientLog) {
			t.Errorf("client app log lacks %q:\n%s", want, clientLog)
		}
	}
	hostsBefore, _ := os.ReadFile("/etc/hosts")

	// The app's environment is PATH and --env, not the CLI's.
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", c.appPID(client)))
	if err != nil {
		t.Fatal(err)
	}
	env := strings.ReplaceAll(string(environ), "\x00", "\n")
	if !strings.Contains(env, "GREETING=hello from client\n") || strings.Contains(env, "L5D_CLI_ONLY") || strings.Contains(env, "HOME=") {
		t.Errorf("the client app's environment:\n%s\nwant GREETING from --env and nothing of the CLI's", env)
	}
	// Labels: app=<service> by default, and --label.
	pods, err := os.ReadFile(filepath.Join(c.stateDir, "store", "local-demo-backend.yaml"))
	if err != nil || !strings.Contains(string(pods), `"app": "backend"`) {
		t.Errorf("backend's pod lacks app=backend: %v\n%s", err, pods)
	}
	// exec: names resolve and connections go through the pod's proxy.
	if out := c.inAppMounts(client, "getent", "hosts", "backend"); !strings.HasPrefix(out, vip+" ") {
		t.Errorf("exec getent hosts backend: %q, want %s", out, vip)
	}
	if out, err := c.run("exec", "demo/nosuch", "--", "true"); err == nil || !strings.Contains(out, "no such workload") {
		t.Errorf("exec in a missing workload: %v %q", err, out)
	}
	if _, err := c.run("exec", "demo/client", "--", "sh", "-c", "exit 7"); err == nil {
		t.Error("exec of a failing command: want a non-zero exit")
	} else if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() != 7 {
		t.Errorf("exec of exit 7: exit status %d", ee.ExitCode())
	}

	// By name through both proxies, with mTLS.
	for _, host := range []string{"backend.demo.svc.cluster.local:8080", "backend:8080"} {
		testkit.Eventually(t, 10*time.Second, func() error {
			code, body, err := get(client.NetNS, "http://"+vip+":8080/", host)
			if err != nil || code != 200 || strings.TrimSpace(body) != "testapp backend" {
				return fmt.Errorf("GET %s from the client pod: %d %q %v", host, code, body, err)
			}
			return nil
		})
	}
	waitMetric(t, client, "response_total", map[string]string{"direction": "outbound", "tls": "true",
		"authority": "backend.demo.svc.cluster.local:8080", "dst_service": "backend", "dst_namespace": "demo",
		"server_id": backend.Identity, "status_code": "200"}, 1)
	waitMetric(t, backend, "response_total", map[string]string{"direction": "inbound", "tls": "true",
		"client_id": client.Identity, "status_code": "200"}, 2)

	// A new Service reaches every pod's hosts file, the running ones too.
	// It has two ports (HTTP and a TCP echo), both ports of its Service.
	c.must("run", "--name", "other", "--namespace", "demo", "--port", "8081", "--port", "8083", "--service-account", "othersa", "--",
		testapp, "--name", "other", "--http", "8081", "--grpc", "0", "--tcp", "8083", "--banner", "0")
	s = c.state()
	otherVIP := s.Services["demo/other"].String()
	testkit.Eventually(t, 30*time.Second, func() error {
		code, body, err := get(client.NetNS, "http://"+otherVIP+":8081/", "other.demo.svc.cluster.local:8081")
		if err == nil && (code != 200 || strings.TrimSpace(body) != "testapp other") {
			err = fmt.Errorf("%d %q", code, body)
		}
		if err != nil {
			return fmt.Errorf("GET other:8081 from the client pod: %w", err)
		}
		return echo(client.NetNS, otherVIP+":8083")
	})
	if out := c.must("status"); !strings.Contains(out, "other ("+otherVIP+":8081,8083)") {
		t.Errorf("status does not show other's two ports:\n%s", out)
	}
	if hosts := c.inAppMounts(client, "cat", "/etc/hosts"); !strings.Contains(hosts, otherVIP+"\tother.demo.svc.cluster.local") {
		t.Errorf("client's /etc/hosts lacks the new Service %s:\n%s", otherVIP, hosts)
	}
	if after, _ := os.ReadFile("/etc/hosts"); string(after) != string(hostsBefore) {
		t.Error("the machine's /etc/hosts changed")
	}
	if got := workload(t, s, "demo", "other").Identity; !strings.HasPrefix(got, "othersa.demo.serviceaccount.identity.") {
		t.Errorf("identity %q, want the service account's", got)
	}

	// apply: authorization policy. Only the client's identity may call
	// backend: other (meshed, othersa) gets 403; then the Server opens to
	// every meshed client and other gets 200 again.
	other := workload(t, s, "demo", "other")
	policyFile := filepath.Join(base, "policy.yaml")
	writePolicy := func(access, extra string) {
		t.Helper()
		yaml := fmt.Sprintf(`apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: backend-http, namespace: demo}
spec: {podSelector: {matchLabels: {app: backend}}, port: 8080, proxyProtocol: HTTP/1, accessPolicy: %s}
%s`, access, extra)
		if err := os.WriteFile(policyFile, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		c.must("apply", "-f", policyFile)
	}
	waitStatus := func(from *localmesh.Workload, want int) {
		t.Helper()
		testkit.Eventually(t, 15*time.Second, func() error {
			code, _, err := get(from.NetNS, "http://"+vip+":8080/", "backend.demo.svc.cluster.local:8080")
			if err != nil || code != want {
				return fmt.Errorf("GET backend from %s: %d %v, want %d", from.Name, code, err, want)
			}
			return nil
		})
	}
	writePolicy("deny", fmt.Sprintf(`---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: client-only, namespace: demo}
spec: {identities: [%q]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: backend-client, namespace: demo}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: backend-http}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: client-only}]
`, client.Identity))
	waitStatus(other, http.StatusForbidden)
	waitStatus(client, http.StatusOK)
	waitMetric(t, backend, "inbound_http_authz_deny_total", map[string]string{"srv_name": "backend-http", "client_id": other.Identity}, 1)
	waitMetric(t, backend, "inbound_http_authz_allow_total", map[string]string{"srv_name": "backend-http", "authz_name": "backend-client", "client_id": client.Identity}, 1)
	badPolicy := filepath.Join(base, "badpolicy.yaml")
	if err := os.WriteFile(badPolicy, []byte("apiVersion: policy.linkerd.io/v1beta1\nkind: Server\nmetadata: {name: x, namespace: demo}\nspec: {podSelector: {}, port: 0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := c.run("apply", "-f", badPolicy); err == nil || !strings.Contains(out, "spec.port") {
		t.Errorf("apply of a Server with port 0: %v %q, want an error naming spec.port", err, out)
	}
	// Per-route authorization: an HTTPRoute on backend-http for /echo,
	// authorized for othersa only; a request matching no route gets 404
	// (the app answers / with 200).
	waitPath := func(from *localmesh.Workload, path string, want int) {
		t.Helper()
		testkit.Eventually(t, 15*time.Second, func() error {
			code, _, err := get(from.NetNS, "http://"+vip+":8080"+path, "backend.demo.svc.cluster.local:8080")
			if err == nil && code != want {
				err = fmt.Errorf("status %d", code)
			}
			if err != nil {
				return fmt.Errorf("GET backend%s from %s: %w, want %d", path, from.Name, err, want)
			}
			return nil
		})
	}
	writePolicy("deny", `---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: vote, namespace: demo}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: backend-http}]
  rules: [{matches: [{path: {type: PathPrefix, value: /echo}}]}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: vote-other, namespace: demo}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: vote}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: othersa}]
`)
	waitPath(other, "/echo", http.StatusOK)
	waitPath(client, "/echo", http.StatusForbidden)
	waitPath(other, "/", http.StatusNotFound)
	waitMetric(t, backend, "inbound_http_authz_allow_total", map[string]string{"srv_name": "backend-http", "route_kind": "HTTPRoute", "route_name": "vote", "authz_name": "vote-other"}, 1)

	// The namespace's default-inbound-policy: deny on the demo namespace
	// closes other's ports (no Server selects them) to the client; without
	// the annotation they open again.
	nsFile := filepath.Join(base, "namespace.yaml")
	writeNS := func(annotations string) {
		t.Helper()
		if err := os.WriteFile(nsFile, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: demo, annotations: {"+annotations+"}}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c.must("apply", "-f", nsFile)
	}
	otherStatus := func(want int) {
		t.Helper()
		testkit.Eventually(t, 15*time.Second, func() error {
			code, _, err := get(client.NetNS, "http://"+otherVIP+":8081/", "other.demo.svc.cluster.local:8081")
			if err == nil && code != want {
				err = fmt.Errorf("status %d", code)
			}
			if err != nil {
				return fmt.Errorf("GET other:8081 from the client: %w, want %d", err, want)
			}
			return nil
		})
	}
	writeNS(`config.linkerd.io/default-inbound-policy: deny`)
	otherStatus(http.StatusForbidden)
	waitMetric(t, other, "inbound_http_authz_deny_total", map[string]string{"srv_kind": "default", "srv_name": "deny"}, 1)
	writeNS("")
	otherStatus(http.StatusOK)

	writePolicy("all-authenticated", "")
	waitStatus(other, http.StatusOK)

	// apply: a Service alias over the backend pod takes effect.
	manifest := filepath.Join(base, "alias.yaml")
	aliasYAML := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: alias, namespace: demo}
spec:
  clusterIP: 10.96.200.1
  ports: [{name: http, port: 8080, targetPort: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: alias-1
  namespace: demo
  labels: {kubernetes.io/service-name: alias}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [%s]
  conditions: {ready: true}
  targetRef: {kind: Pod, namespace: demo, name: backend}
`, backend.IP)
	if err := os.WriteFile(manifest, []byte(aliasYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("apply", "-f", manifest)
	testkit.Eventually(t, 15*time.Second, func() error {
		code, body, err := get(client.NetNS, "http://10.96.200.1:8080/", "alias.demo.svc.cluster.local:8080")
		if err != nil || code != 200 || strings.TrimSpace(body) != "testapp backend" {
			return fmt.Errorf("applied Service not serving: %d %q %v", code, body, err)
		}
		return nil
	})
	waitMetric(t, client, "response_total", map[string]string{"direction": "outbound", "tls": "true", "dst_service": "alias"}, 1)

	// apply: a Service without a cluster IP gets one, and running pods
	// resolve it by name at once.
	named := filepath.Join(base, "named.yaml")
	if err := os.WriteFile(named, []byte(strings.NewReplacer("name: alias", "name: named", "name: alias-1", "name: named-1",
		"service-name: alias", "service-name: named", "  clusterIP: 10.96.200.1\n", "").Replace(aliasYAML)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("apply", "-f", named)
	resolved := strings.Fields(c.inAppMounts(client, "getent", "hosts", "named.demo.svc.cluster.local"))
	if len(resolved) < 2 || !strings.HasPrefix(resolved[0], "10.96.") {
		t.Fatalf("named.demo.svc.cluster.local resolves to %q in the client pod, want a cluster IP", resolved)
	}
	if short := strings.Fields(c.inAppMounts(client, "getent", "hosts", "named")); len(short) == 0 || short[0] != resolved[0] {
		t.Errorf("short name: %q, want %s", short, resolved[0])
	}
	testkit.Eventually(t, 15*time.Second, func() error {
		code, body, err := get(client.NetNS, "http://"+resolved[0]+":8080/", "named.demo.svc.cluster.local:8080")
		if err != nil || code != 200 || strings.TrimSpace(body) != "testapp backend" {
			return fmt.Errorf("applied Service without a cluster IP not serving: %d %q %v", code, body, err)
		}
		return nil
	})
	outside := filepath.Join(base, "outside.yaml")
	if err := os.WriteFile(outside, []byte(strings.ReplaceAll(aliasYAML, "10.96.200.1", "192.168.7.7")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := c.run("apply", "-f", outside); err == nil || !strings.Contains(out, "not in the local mesh's Service range") {
		t.Errorf("apply of a cluster IP outside the range: %v %q, want an error", err, out)
	}
	bad := filepath.Join(base, "bad.yaml")
	if err := os.WriteFile(bad, []byte("kind: Service\nmetadata: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run("apply", "-f", bad); err == nil {
		t.Error("apply of a malformed manifest: want an error")
	}

	// An app that fails at once is reported, and its pod removed.
	if out, err := c.run("run", "--name", "crash", "--namespace", "demo", "--port", "7000", "--", "sh", "-c", "echo boom >&2; exit 3"); err == nil || !strings.Contains(out, "boom") {
		t.Errorf("run of a crashing app: %v %q, want an error with its output", err, out)
	}
	if cs := c.state(); len(cs.Workloads) != len(s.Workloads) || cs.Services["demo/crash"].IsValid() {
		t.Errorf("the crashed workload stayed in the state: %d workloads, services %v", len(cs.Workloads), cs.Services)
	}
	if left, _ := localmesh.ListNetNS(s.Prefix + "demo-crash"); len(left) != 0 {
		t.Errorf("the crashed workload's namespace stayed: %v", left)
	}
	if _, err := os.Stat(filepath.Join(c.stateDir, "pods", "demo.crash")); !os.IsNotExist(err) {
		t.Errorf("the crashed workload's pod directory stayed: %v", err)
	}
	// A missing program fails before any pod is made.
	if out, err := c.run("run", "--name", "ghost", "--namespace", "demo", "--", "/nonexistent/app"); err == nil || !strings.Contains(out, "not an executable file") {
		t.Errorf("run of a missing program: %v %q, want an error naming it", err, out)
	}
	if _, err := os.Stat(filepath.Join(c.stateDir, "pods", "demo.ghost")); !os.IsNotExist(err) {
		t.Errorf("a pod directory was made for a missing program: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.stateDir, "store", "local-demo-crash.yaml")); !os.IsNotExist(err) {
		t.Errorf("the crashed workload's Service is in the store: %v", err)
	}

	// A Service with a selector gets the matching workloads as endpoints,
	// its port 80 in front of the app's 8080.
	shopYAML := filepath.Join(base, "shop.yaml")
	if err := os.WriteFile(shopYAML, []byte(`apiVersion: v1
kind: Service
metadata: {name: shop, namespace: demo}
spec:
  selector: {app: backend}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("apply", "-f", shopYAML)
	shopIP := strings.Fields(c.inAppMounts(client, "getent", "hosts", "shop.demo.svc.cluster.local"))
	if len(shopIP) == 0 {
		t.Fatal("shop.demo.svc.cluster.local does not resolve in the client pod")
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		code, body, err := get(client.NetNS, "http://"+shopIP[0]+":80/", "shop.demo.svc.cluster.local")
		if err != nil || code != 200 || strings.TrimSpace(body) != "testapp backend" {
			return fmt.Errorf("GET shop:80 from the client pod: %d %q %v", code, body, err)
		}
		return nil
	})

	// status: every workload, ready, with its identity.
	out := c.must("status")
	for _, w := range s.Workloads {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(w.Namespace) + `\s+` + regexp.QuoteMeta(w.Name) + `\s+` +
			regexp.QuoteMeta(w.IP.String()) + `\s+` + regexp.QuoteMeta(w.NetNS) + `\s.*\sready\s.*proxy:` + fmt.Sprint(w.Procs[0].PID) + `\b.*` + regexp.QuoteMeta(w.Identity) + `$`)
		if !re.MatchString(out) {
			t.Errorf("status lacks a ready line for %s with %s and %s", w.Key(), w.IP, w.Identity)
		}
	}

	// A killed app is restarted by its supervisor, and status counts it.
	oldPID := c.appPID(backend)
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.waitRestarted(backend, oldPID, 1)
	if out := c.must("status"); !regexp.MustCompile(`(?m)^demo\s+backend\s.*\sready\s+ready\s+1\s+proxy:\d+,supervisor:\d+,app:\d+\s`).MatchString(out) {
		t.Errorf("status does not show backend restarted once and ready:\n%s", out)
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		code, body, err := get(client.NetNS, "http://"+vip+":8080/", "backend.demo.svc.cluster.local:8080")
		if err != nil || code != 200 || strings.TrimSpace(body) != "testapp backend" {
			return fmt.Errorf("backend does not serve again after its restart: %d %q %v", code, body, err)
		}
		return nil
	})

	// A killed proxy: the supervisor withdraws the endpoint at once and
	// restarts the proxy; the endpoint comes back once it is ready.
	s = c.state()
	backend = workload(t, s, "demo", "backend")
	oldProxy := backend.Procs[0]
	if oldProxy.Role != "proxy" {
		t.Fatalf("backend's first process is %s, want the proxy", oldProxy.Role)
	}
	sliceFile := filepath.Join(c.stateDir, "store", "local-demo-backend.yaml")
	if err := syscall.Kill(oldProxy.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyTrue(t, 15*time.Second, "the killed proxy's endpoint to be withdrawn", func() bool {
		b, _ := os.ReadFile(sliceFile)
		return strings.Contains(string(b), "conditions: {ready: false}")
	})
	testkit.Eventually(t, 30*time.Second, func() error {
		p := workload(t, c.state(), "demo", "backend").Procs[0]
		b, _ := os.ReadFile(sliceFile)
		if p.PID == oldProxy.PID || !running(p.PID) || !strings.Contains(string(b), "conditions: {ready: true}") {
			return fmt.Errorf("proxy pid %d (was %d), store:\n%s", p.PID, oldProxy.PID, b)
		}
		return nil
	})
	testkit.Eventually(t, 30*time.Second, func() error {
		code, body, err := get(client.NetNS, "http://"+vip+":8080/", "backend.demo.svc.cluster.local:8080")
		if err != nil || code != 200 || strings.TrimSpace(body) != "testapp backend" {
			return fmt.Errorf("backend after its proxy's restart: %d %q %v", code, body, err)
		}
		return nil
	})

	// A killed supervisor takes its application with it; up restarts
	// both.
	s = c.state()
	backend = workload(t, s, "demo", "backend")
	var sup *localmesh.Proc
	for _, p := range backend.Procs {
		if p.Role == "supervisor" {
			sup = p
		}
	}
	if sup == nil {
		t.Fatal("backend has no supervisor process")
	}
	oldPID = c.appPID(backend)
	if err := syscall.Kill(sup.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyTrue(t, 10*time.Second, fmt.Sprintf("the application (pid %d) to exit with its killed supervisor", oldPID), func() bool {
		return !running(oldPID) && !running(sup.PID)
	})
	if out := c.must("status"); !regexp.MustCompile(`(?m)^demo\s+backend\s.*\snot ready\s+1\s+proxy:\d+ dead:supervisor,app\s`).MatchString(out) {
		t.Errorf("status does not show backend's dead supervisor and app:\n%s", out)
	}
	if out := c.must("up"); !strings.Contains(out, "restarted supervisor in demo/backend") {
		t.Errorf("up: %q, want it to restart backend's supervisor", out)
	}
	c.waitRestarted(backend, oldPID, 2)

	// delete removes one workload: its processes, namespace, pod
	// directory and Service; the others stay.
	s = c.state()
	other = workload(t, s, "demo", "other")
	otherPIDs := []int{}
	for _, p := range other.Procs {
		otherPIDs = append(otherPIDs, p.PID)
	}
	otherPIDs = append(otherPIDs, c.appPID(other))
	c.must("delete", "demo/other")
	for _, pid := range otherPIDs {
		testkit.EventuallyTrue(t, 15*time.Second, fmt.Sprintf("process %d of the deleted workload to exit", pid), func() bool { return !running(pid) })
	}
	if _, err := os.Stat(localmesh.NetNSPath(other.NetNS)); err == nil {
		t.Errorf("the deleted workload's namespace %s stayed", other.NetNS)
	}
	for _, p := range []string{filepath.Join(c.stateDir, "pods", "demo.other"), filepath.Join(c.stateDir, "store", "local-demo-other.yaml")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s stayed after delete: %v", p, err)
		}
	}
	for _, w := range c.state().Workloads {
		if w.Key() == "demo/other" {
			t.Error("the deleted workload is still in the state")
		}
	}
	if out, err := c.run("delete", "demo/other"); err == nil || !strings.Contains(out, "no such workload") {
		t.Errorf("second delete: %v %q, want an error", err, out)
	}
	if out, err := c.run("delete", "linkerd/linkerd-identity"); err == nil || !strings.Contains(out, "control plane") {
		t.Errorf("delete of the control plane: %v %q, want an error", err, out)
	}

	// down leaves nothing behind.
	s = c.state()
	pids := c.pids(s)
	c.must("down")
	downDone = true
	c.leftovers(s, pids, rulesBefore)
	if out, err := c.run("status"); err == nil || !strings.Contains(out, "not up") {
		t.Errorf("status after down: %v %q, want an error saying the mesh is not up", err, out)
	}
	// down is idempotent.
	c.must("down")
}

// TestLocalFailedUpLeavesNothing makes the control plane fail to start (a proxy
// that exits at once) and checks that up removes what it had started.
func TestLocalFailedUpLeavesNothing(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd", "./cmd/linkerd-init", "./cmd/linkerd-controller")
	base, err := os.MkdirTemp("", "l5dl-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	binDir := filepath.Join(base, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"linkerd-init", "linkerd-controller"} {
		if err := os.Symlink(bins[b], filepath.Join(binDir, b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(binDir, "linkerd-proxy"), []byte("#!/bin/sh\necho broken proxy >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, linkerd: bins["linkerd"], stateDir: filepath.Join(base, "state"), binDir: binDir}
	t.Cleanup(func() { _, _ = c.run("down") })
	out, err := c.run("up")
	if err == nil || !strings.Contains(out, "proxy exited") {
		t.Fatalf("up with a broken proxy: %v %q, want a failure naming the proxy", err, out)
	}
	if _, err := os.Stat(c.stateDir); !os.IsNotExist(err) {
		t.Errorf("state dir left after a failed up: %v", err)
	}
	if left, err := localmesh.ListNetNS(localmesh.NamePrefix(c.stateDir)); err != nil || len(left) != 0 {
		t.Errorf("namespaces left after a failed up: %v %v", left, err)
	}
	// The identity controller was started before the proxy: it must be gone.
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), c.stateDir) {
			t.Errorf("process %s still running after a failed up: %q", e.Name(), strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

// TestLocalWithoutPrivileges runs the real CLI as an unprivileged user, and
// as root without the capabilities the mesh needs: every command refuses in
// one line and starts nothing.
func TestLocalWithoutPrivileges(t *testing.T) {
	testnet.Require(t, "setpriv", "ip")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd", "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-controller", "./cmd/linkerd-demo")
	base, err := os.MkdirTemp("", "l5dl-noroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	// Writable by anyone: the refusal, not the file system, must stop it.
	if err := os.Chmod(base, 0o777); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(base, "svc.yaml")
	if err := os.WriteFile(manifest, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(base, "state")
	binDir := filepath.Dir(bins["linkerd-proxy"])
	local := func(args ...string) []string {
		return append([]string{bins["linkerd"], "local", "--state-dir", stateDir, "--bin-dir", binDir}, args...)
	}
	commands := [][]string{
		local("up"),
		local("run", "--name", "web", "--namespace", "demo", "--port", "8080", "--", "sleep", "60"),
		local("apply", "-f", manifest),
		local("status"),
		local("down"),
		local("supervise", "--pod", "demo/web"),
		local("exec", "demo/web", "--", "true"),
		local("delete", "demo/web"),
		{bins["linkerd"], "demo", "--state-dir", stateDir, "--bin-dir", binDir, "--for", "5s"},
	}
	for _, who := range []struct {
		name, want string
		setpriv    []string
	}{
		{"nobody", "", []string{"--reuid=65534", "--regid=65534", "--clear-groups"}},
		{"root without capabilities", "missing CAP_NET_ADMIN,CAP_SYS_ADMIN", []string{"--bounding-set=-net_admin,-sys_admin", "--inh-caps=-all"}},
	} {
		for _, args := range commands {
			name := who.name + ": " + strings.Join(args[1:3], " ")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			cmd := exec.CommandContext(ctx, "setpriv", append(append(who.setpriv, "--"), args...)...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			cancel()
			if err == nil {
				t.Errorf("%s: succeeded, want a refusal", name)
			}
			msg := stderr.String()
			if args[6] == "up" {
				// up lists every missing prerequisite, root first, each
				// with its fix.
				if !strings.HasPrefix(msg, "Error: the local mesh cannot start on this machine") ||
					!regexp.MustCompile(`\n  - linkerd local needs root[^\n]*`+regexp.QuoteMeta(who.want)+`[^\n]*; fix: `).MatchString(msg) {
					t.Errorf("%s: stderr %q, want the prerequisites, first that it needs root %s", name, msg, who.want)
				}
			} else if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "Error: linkerd local needs root") || !strings.Contains(msg, who.want) {
				t.Errorf("%s: stderr %q, want one line saying it needs root %s", name, msg, who.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("%s: printed %q", name, stdout.String())
			}
			if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
				t.Fatalf("%s: the state directory was created: %v", name, err)
			}
			if left, err := localmesh.ListNetNS(localmesh.NamePrefix(stateDir)); err != nil || len(left) != 0 {
				t.Fatalf("%s: namespaces created: %v %v", name, left, err)
			}
		}
	}
}
