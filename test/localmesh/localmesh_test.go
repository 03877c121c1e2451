// Package localmesh_test runs `linkerd local` end to end: the real CLI,
// control plane, proxies and test apps in network namespaces on this machine.
package localmesh_test

import (
	"context"
	"encoding/json"
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

	"github.com/linkerd-go/linkerd/internal/testnet"
	"github.com/linkerd-go/linkerd/pkg/localmesh"
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
	out, err := cmd.CombinedOutput()
	c.t.Logf("linkerd %s:\n%s", strings.Join(args, " "), out)
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

func appPID(t *testing.T, w *localmesh.Workload) int {
	t.Helper()
	for _, p := range w.Procs {
		if p.Role == "app" {
			return p.PID
		}
	}
	t.Fatalf("%s has no app process", w.Key())
	return 0
}

// inAppMounts runs a command in the network and mount namespaces of w's app.
func inAppMounts(t *testing.T, w *localmesh.Workload, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	full := append([]string{"-t", fmt.Sprint(appPID(t, w)), "-m", "-n", "--"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter into %s: %s: %v\n%s", w.Key(), strings.Join(args, " "), err, out)
	}
	return string(out)
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

// metric sums the series of family name in w's proxy whose labels include
// want.
func metric(t *testing.T, w *localmesh.Workload, name string, want map[string]string) float64 {
	t.Helper()
	_, text, err := get(w.NetNS, "http://127.0.0.1:4191/metrics", "")
	if err != nil {
		t.Fatalf("scrape %s: %v", w.Key(), err)
	}
	var parser expfmt.TextParser
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse metrics of %s: %v", w.Key(), err)
	}
	var sum float64
	fam := fams[name]
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

// waitMetric polls (bounded) until the metric reaches min.
func waitMetric(t *testing.T, w *localmesh.Workload, name string, labels map[string]string, min float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := metric(t, w, name, labels)
		if v >= min {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s%v = %v, want >= %v", w.Key(), name, labels, v, min)
		}
		time.Sleep(100 * time.Millisecond)
	}
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
	c.must("run", "--name", "client", "--namespace", "demo", "--", "sh", "-c",
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
	for i := 0; i < 100; i++ {
		b, _ := os.ReadFile(filepath.Join(c.stateDir, "pods", "demo.client", "app.log"))
		clientLog = string(b)
		if strings.Count(clientLog, vip) >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{vip + " +backend.demo.svc.cluster.local", vip + " +backend"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(vip) + strings.TrimPrefix(want, vip) + `\b`).MatchString(clientLog) {
			t.Errorf("client app log lacks %q:\n%s", want, clientLog)
		}
	}
	hostsBefore, _ := os.ReadFile("/etc/hosts")

	// By name through both proxies, with mTLS.
	for _, host := range []string{"backend.demo.svc.cluster.local:8080", "backend:8080"} {
		var (
			code int
			body string
			err  error
		)
		for i := 0; i < 50; i++ {
			code, body, err = get(client.NetNS, "http://"+vip+":8080/", host)
			if err == nil && code == 200 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || code != 200 || strings.TrimSpace(body) != "testapp backend" {
			t.Fatalf("GET %s from the client pod: %d %q %v", host, code, body, err)
		}
	}
	waitMetric(t, client, "response_total", map[string]string{"direction": "outbound", "tls": "true",
		"authority": "backend.demo.svc.cluster.local:8080", "dst_service": "backend", "dst_namespace": "demo",
		"server_id": backend.Identity, "status_code": "200"}, 1)
	waitMetric(t, backend, "response_total", map[string]string{"direction": "inbound", "tls": "true",
		"client_id": client.Identity, "status_code": "200"}, 2)

	// A new Service reaches every pod's hosts file, the running ones too.
	c.must("run", "--name", "other", "--namespace", "demo", "--port", "8081", "--service-account", "othersa", "--",
		testapp, "--name", "other", "--http", "8081", "--grpc", "0", "--tcp", "0", "--banner", "0")
	s = c.state()
	otherVIP := s.Services["demo/other"].String()
	if hosts := inAppMounts(t, client, "cat", "/etc/hosts"); !strings.Contains(hosts, otherVIP+"\tother.demo.svc.cluster.local") {
		t.Errorf("client's /etc/hosts lacks the new Service %s:\n%s", otherVIP, hosts)
	}
	if after, _ := os.ReadFile("/etc/hosts"); string(after) != string(hostsBefore) {
		t.Error("the machine's /etc/hosts changed")
	}
	if got := workload(t, s, "demo", "other").Identity; !strings.HasPrefix(got, "othersa.demo.serviceaccount.identity.") {
		t.Errorf("identity %q, want the service account's", got)
	}

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
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body, err := get(client.NetNS, "http://10.96.200.1:8080/", "alias.demo.svc.cluster.local:8080")
		if err == nil && code == 200 && strings.TrimSpace(body) == "testapp backend" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("applied Service never served: %d %q %v", code, body, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitMetric(t, client, "response_total", map[string]string{"direction": "outbound", "tls": "true", "dst_service": "alias"}, 1)
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
	if _, err := os.Stat(filepath.Join(c.stateDir, "store", "local-demo-crash.yaml")); !os.IsNotExist(err) {
		t.Errorf("the crashed workload's Service is in the store: %v", err)
	}

	// status: every workload, ready, with its identity.
	out := c.must("status")
	for _, w := range s.Workloads {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(w.Namespace) + `\s+` + regexp.QuoteMeta(w.Name) + `\s+` +
			regexp.QuoteMeta(w.IP.String()) + `\s.*\sready\s.*` + regexp.QuoteMeta(w.Identity) + `$`)
		if !re.MatchString(out) {
			t.Errorf("status lacks a ready line for %s with %s and %s", w.Key(), w.IP, w.Identity)
		}
	}

	// A dead app shows up in status.
	if err := syscall.Kill(appPID(t, client), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadRE := regexp.MustCompile(`(?m)^demo\s+client\s.*dead:app`)
	for i := 0; ; i++ {
		out := c.must("status")
		if deadRE.MatchString(out) {
			break
		}
		if i == 20 {
			t.Fatalf("status does not report client's dead app:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// down leaves nothing behind.
	var pids []int
	for _, w := range s.Workloads {
		for _, p := range w.Procs {
			pids = append(pids, p.PID)
		}
	}
	c.must("down")
	downDone = true
	for _, pid := range pids {
		for i := 0; running(pid) && i < 100; i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if running(pid) {
			t.Errorf("process %d still running after down", pid)
		}
	}
	if left, err := localmesh.ListNetNS(s.Prefix); err != nil || len(left) != 0 {
		t.Errorf("namespaces left after down: %v %v", left, err)
	}
	if _, err := os.Stat(c.stateDir); !os.IsNotExist(err) {
		t.Errorf("state dir left after down: %v", err)
	}
	if n := hostProxyInitRules(t); n != rulesBefore {
		t.Errorf("host iptables has %d PROXY_INIT lines after down, %d before", n, rulesBefore)
	}
	if out, err := c.run("status"); err == nil || !strings.Contains(out, "not up") {
		t.Errorf("status after down: %v %q, want an error saying the mesh is not up", err, out)
	}
	// down is idempotent.
	c.must("down")
}

// TestFailedUpLeavesNothing makes the control plane fail to start (a proxy
// that exits at once) and checks that up removes what it had started.
func TestFailedUpLeavesNothing(t *testing.T) {
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
