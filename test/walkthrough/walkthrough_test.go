// Package walkthrough is the acceptance test: Linkerd's getting-started
// walkthrough, run as a user would on test/cluster's real single-node
// cluster (kube-apiserver, etcd, kubelet, containerd, runc, CNI), with the
// project's images loaded into the node and the linkerd CLI and kubectl run
// as processes, piped together by a shell exactly as the documentation
// shows:
//
//	linkerd version                  # Server version: unavailable
//	linkerd check --pre
//	linkerd install --crds | kubectl apply -f -
//	linkerd install | kubectl apply -f -
//	linkerd check                    # and linkerd version shows the server
//	kubectl apply -f demo/kubernetes/demo.yaml
//	kubectl get -n demo deploy -o yaml | linkerd inject - | kubectl apply -f -
//	linkerd check --proxy -n demo
//
// then reads every demo proxy's metrics until the bot's traffic shows up as
// mTLS (tls="true", with the peers' identities) on every edge: bot → web,
// web → items and web → voting; and goes on with the viz extension:
//
//	linkerd viz install | kubectl apply -f -
//	linkerd viz check
//	linkerd viz check --proxy -n demo
//	linkerd check                    # viz's checks included
//	linkerd viz stat deploy -n demo
//	linkerd viz tap deploy/web -n demo          # tap not enabled: restart
//	kubectl -n demo rollout restart deploy
//	linkerd viz tap deploy/web -n demo --to deploy/voting -o wide
//
// asking the extension's Prometheus (by PromQL) for the demo's responses
// by deployment: the failing choice makes voting's and web's success
// below 100%, items' at 100%.
//
// It needs root, the binaries from hack/build-k8s.sh, containerd, runc,
// the CNI plugins and kubectl; without them it skips, and fails when
// CI=true. On failure it logs the pods, their descriptions and logs, and
// (through test/cluster) the node components' logs.
package walkthrough

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/internal/images"
	"github.com/linkerd-go/linkerd/internal/syncbuf"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/test/cluster"
	vizclient "github.com/linkerd-go/linkerd/viz/metricsapi/client"
	"github.com/linkerd-go/linkerd/viz/vizcheck"
)

// tag is the tag of the images the node loads, and the version stamped
// into the CLI: CLI, chart and control plane agree, as in a release.
const tag = "test"

const (
	controlNS  = "linkerd"
	vizNS      = vizcheck.DefaultNamespace
	demoNS     = "demo"
	demoYAML   = "../../demo/kubernetes/demo.yaml"
	demoImage  = images.DemoImageName + ":dev" // the tag demo.yaml names
	versionVar = "github.com/linkerd-go/linkerd/pkg/version.Version"
)

// demoApps are the demo's Deployments, each with a ServiceAccount of the
// same name.
var demoApps = []string{"web", "items", "voting", "bot"}

// minRequests is how many mTLS requests each edge must show; the bot votes
// 3 times a second and every vote crosses all three edges.
const minRequests = 10

func TestMain(m *testing.M) { cluster.Main(m) }

// shell runs the walkthrough's commands: bash with pipefail, linkerd and
// kubectl first on PATH, KUBECONFIG pointing at the node.
type shell struct {
	t    *testing.T
	path string // PATH
	home string
	kcfg string
}

func newShell(t *testing.T, n *cluster.Node, linkerd string) *shell {
	t.Helper()
	bin := t.TempDir()
	kubectl := cluster.KubectlPath()
	for name, target := range map[string]string{"linkerd": linkerd, "kubectl": kubectl} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	return &shell{t: t, path: bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", home: t.TempDir(), kcfg: n.Kubeconfig}
}

// run runs script and returns its standard output and error output; it
// logs both.
func (s *shell) run(ctx context.Context, timeout time.Duration, script string) (string, string, error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", script)
	cmd.Env = []string{"PATH=" + s.path, "HOME=" + s.home, "KUBECONFIG=" + s.kcfg, "LANG=C.UTF-8"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A timeout stops the whole pipeline, not just bash.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	begin := time.Now()
	err := cmd.Run()
	s.t.Logf("$ %s   (%v, %v)\n%s%s", script, time.Since(begin).Round(time.Millisecond), exitStatus(err), indent(stdout.String()), indent(stderr.String()))
	return stdout.String(), stderr.String(), err
}

// must is run that fails the test when the script fails.
func (s *shell) must(ctx context.Context, timeout time.Duration, script string) string {
	s.t.Helper()
	out, _, err := s.run(ctx, timeout, script)
	if err != nil {
		s.t.Fatalf("%s: %v", script, err)
	}
	return out
}

func exitStatus(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

func TestWalkthrough(t *testing.T) {
	begin := time.Now()
	cluster.RequireNode(t)
	cluster.RequireKubectl(t)
	// The CLI builds while the node starts (and builds the images).
	linkerd := filepath.Join(t.TempDir(), "linkerd")
	buildCtx, cancelBuild := context.WithTimeout(context.Background(), 10*time.Minute)
	built := make(chan error, 1)
	go func() {
		cmd := exec.CommandContext(buildCtx, "go", "build", "-ldflags", "-X "+versionVar+"="+tag, "-o", linkerd, "../../cmd/linkerd")
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("go build ./cmd/linkerd: %w\n%s", err, out)
		}
		built <- err
	}()
	var buildErr error
	buildDone := sync.OnceFunc(func() { buildErr = <-built })
	t.Cleanup(func() {
		cancelBuild()
		buildDone()
	})
	n := cluster.StartNode(t, cluster.NodeOptions{ImageTag: tag})
	nodeUp := time.Since(begin)
	if buildDone(); buildErr != nil {
		t.Fatal(buildErr)
	}
	t.Logf("node up in %v (images included); test at %v", n.StartupTime.Round(time.Millisecond), nodeUp.Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	sh := newShell(t, n, linkerd)
	t.Cleanup(func() {
		if t.Failed() {
			diagnose(t, n, controlNS, demoNS, vizNS)
		}
	})
	// The timings CI cares about, logged at the end (those reached).
	timings := map[string]time.Duration{"node up": nodeUp}
	defer func() {
		var parts []string
		for _, k := range []string{"node up", "install to ready", "inject to 2/2", "inject to mTLS", "viz install to ready", "viz install to metrics"} {
			if d, ok := timings[k]; ok {
				parts = append(parts, fmt.Sprintf("%s %v", k, d.Round(100*time.Millisecond)))
			}
		}
		t.Logf("timings: %s, total %v", strings.Join(parts, ", "), time.Since(begin).Round(100*time.Millisecond))
	}()

	// 1. No control plane yet.
	out := sh.must(ctx, time.Minute, "linkerd version")
	if !strings.Contains(out, "Client version: "+tag+"\n") || !strings.Contains(out, "Server version: unavailable\n") {
		t.Fatalf("linkerd version before install: want client %s and server unavailable, got:\n%s", tag, out)
	}

	// 2. Pre-flight checks.
	out = sh.must(ctx, 2*time.Minute, "linkerd check --pre")
	if !strings.HasSuffix(out, "Status check results are √\n") {
		t.Fatalf("linkerd check --pre: want it to end with the success line, got:\n%s", out)
	}

	// 3. Install.
	installed := time.Now()
	sh.must(ctx, 2*time.Minute, "linkerd install --crds | kubectl apply -f -")
	sh.must(ctx, 2*time.Minute, "kubectl wait --for=condition=Established --timeout=60s crd --all")
	sh.must(ctx, 2*time.Minute, "linkerd install | kubectl apply -f -")

	// 4. The control plane comes up, every pod meshed.
	sh.must(ctx, 6*time.Minute, "kubectl -n "+controlNS+" wait --for=condition=Available --timeout=5m deploy --all")
	timings["install to ready"] = time.Since(installed)
	t.Logf("control plane Available %v after install", timings["install to ready"].Round(time.Millisecond))
	controlPlane := []string{k8s.IdentityDeploymentName, k8s.DestinationDeploymentName, k8s.ProxyInjectorDeploymentName}
	checkPodList(t, sh.must(ctx, time.Minute, "kubectl get pods -n "+controlNS), len(controlPlane))
	checkContainerList(t, sh.must(ctx, time.Minute, "kubectl get pods -n "+controlNS+" "+containerColumns))
	checkMeshedPods(ctx, t, n, controlNS, controlPlane)

	// 5. linkerd check passes, and the server has a version.
	out = sh.must(ctx, 6*time.Minute, "linkerd check")
	if !strings.HasSuffix(out, "Status check results are √\n") {
		t.Fatalf("linkerd check: want it to end with the success line, got:\n%s", out)
	}
	out = sh.must(ctx, time.Minute, "linkerd version")
	if !strings.Contains(out, "Server version: "+tag+"\n") {
		t.Fatalf("linkerd version after install: want server version %s, got:\n%s", tag, out)
	}

	// 6. The demo app, not meshed yet.
	manifest, err := os.ReadFile(demoYAML)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(manifest, []byte(demoImage)) {
		t.Fatalf("%s does not use %s", demoYAML, demoImage)
	}
	demoRef, err := images.Ref(images.Demo, tag)
	if err != nil {
		t.Fatal(err)
	}
	demoFile := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(demoFile, bytes.ReplaceAll(manifest, []byte(demoImage), []byte(demoRef)), 0o644); err != nil {
		t.Fatal(err)
	}
	sh.must(ctx, 2*time.Minute, "kubectl apply -f "+demoFile)
	sh.must(ctx, 4*time.Minute, "kubectl -n "+demoNS+" rollout status deploy --timeout=3m")

	// 7. Mesh it.
	injected := time.Now()
	sh.must(ctx, 2*time.Minute, "kubectl get -n "+demoNS+" deploy -o yaml | linkerd inject - | kubectl apply -f -")
	sh.must(ctx, 4*time.Minute, "kubectl -n "+demoNS+" rollout status deploy --timeout=3m")
	waitRolledOut(ctx, t, n, demoNS, demoApps)
	timings["inject to 2/2"] = time.Since(injected)
	t.Logf("demo meshed (2/2) %v after inject", timings["inject to 2/2"].Round(time.Millisecond))
	out = sh.must(ctx, time.Minute, "kubectl get pods -n "+demoNS)
	checkPodList(t, out, len(demoApps))
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if f := strings.Fields(line); len(f) < 2 || f[1] != "2/2" {
			t.Errorf("kubectl get pods: want every demo pod 2/2, got %q", line)
		}
	}
	checkContainerList(t, sh.must(ctx, time.Minute, "kubectl get pods -n "+demoNS+" "+containerColumns))
	checkMeshedPods(ctx, t, n, demoNS, demoApps)

	// 8. The data-plane checks.
	out = sh.must(ctx, 6*time.Minute, "linkerd check --proxy -n "+demoNS)
	if !strings.HasSuffix(out, "Status check results are √\n") {
		t.Fatalf("linkerd check --proxy: want it to end with the success line, got:\n%s", out)
	}
	if !strings.Contains(out, "linkerd-data-plane") {
		t.Errorf("linkerd check --proxy ran no data-plane checks:\n%s", out)
	}

	// 9. The bot's traffic is mTLS on every edge.
	waitMTLS(ctx, t, n)
	timings["inject to mTLS"] = time.Since(injected)

	// 10. The viz extension: Prometheus, metrics-api and web, meshed.
	vizInstalled := time.Now()
	sh.must(ctx, 2*time.Minute, "linkerd viz install | kubectl apply -f -")
	sh.must(ctx, 6*time.Minute, "kubectl -n "+vizNS+" wait --for=condition=Available --timeout=5m deploy --all")
	waitRolledOut(ctx, t, n, vizNS, vizApps)
	timings["viz install to ready"] = time.Since(vizInstalled)
	checkMeshedPods(ctx, t, n, vizNS, vizApps)
	out = sh.must(ctx, 6*time.Minute, "linkerd viz check")
	if !strings.HasSuffix(out, "Status check results are √\n") || !strings.Contains(out, "√ viz extension self-check\n") {
		t.Fatalf("linkerd viz check: want every viz check to pass, got:\n%s", out)
	}

	// 11. Prometheus scrapes the demo's proxies, labelled by workload.
	waitVizMetrics(ctx, t, n)
	timings["viz install to metrics"] = time.Since(vizInstalled)
	out = sh.must(ctx, 4*time.Minute, "linkerd viz check --proxy -n "+demoNS)
	if !strings.HasSuffix(out, "Status check results are √\n") || !strings.Contains(out, "√ data plane proxy metrics are present in Prometheus\n") {
		t.Fatalf("linkerd viz check --proxy: want the demo's metrics in Prometheus, got:\n%s", out)
	}

	// 12. linkerd check runs viz's checks too, now that it is installed.
	out = sh.must(ctx, 6*time.Minute, "linkerd check")
	if !strings.HasSuffix(out, "Status check results are √\n") || !strings.Contains(out, "\nlinkerd-viz\n") {
		t.Fatalf("linkerd check: want the linkerd-viz checks, passing, got:\n%s", out)
	}

	// 13. The success rates by deployment, from the metrics API (through a
	// port-forward to it): voting fails one choice, web passes it on.
	waitStat(ctx, t, sh)

	// 14. Tap, through the tap service: the demo's pods started before viz,
	// so tap is not enabled on them until they are restarted (and the
	// tap-injector gives their proxies the tap service's identity).
	vizTap(ctx, t, n, sh)
	dashboardLiveCalls(ctx, t, sh)

	// 15. Authorization policy: with all-authenticated as the demo
	// namespace's default, an unmeshed client is refused, the meshed demo
	// keeps working.
	policyStep(ctx, t, n, sh)
}

// vizTap runs `linkerd viz tap` on the demo: refused with Linkerd's advice
// on the pods started before viz, then, once they are restarted, web's
// calls to voting with the failing vote's gRPC status Unknown (-o wide,
// --to), and a path filter with -o json.
func vizTap(ctx context.Context, t *testing.T, n *cluster.Node, sh *shell) {
	t.Helper()
	_, stderr, err := sh.run(ctx, time.Minute, "linkerd viz tap deploy/web -n "+demoNS+" --duration 10s")
	if err == nil || !strings.Contains(stderr, "no pods to tap for deployment/web") || !strings.Contains(stderr, "tap not enabled") ||
		!strings.Contains(stderr, "kubectl rollout restart deployment/web -n "+demoNS) {
		t.Fatalf("viz tap before the restart: want an error naming tap not enabled and the restart, got %v:\n%s", err, stderr)
	}
	sh.must(ctx, time.Minute, "kubectl -n "+demoNS+" rollout restart deploy")
	sh.must(ctx, 4*time.Minute, "kubectl -n "+demoNS+" rollout status deploy --timeout=3m")
	waitRolledOut(ctx, t, n, demoNS, demoApps)
	pods, err := n.Client.CoreV1().Pods(demoNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Annotations["viz.linkerd.io/tap-enabled"] != "true" {
			t.Errorf("pod %s after the restart: annotations %v, want viz.linkerd.io/tap-enabled", p.Name, p.Annotations)
		}
	}

	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _, err := sh.run(ctx, time.Minute, "linkerd viz tap deploy/web -n "+demoNS+" --to deploy/voting -o wide --max-rps 50 --duration 10s")
		counts := map[string]int{}
		unknown := false
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			counts[f[0]]++
			if !strings.Contains(l, "proxy=out") || !strings.Contains(l, "dst_deployment=voting") || !strings.Contains(l, "pod="+demoNS+"/web-") {
				t.Errorf("viz tap --to deploy/voting -o wide: a line not from web to voting: %s", l)
			}
			if f[0] == "end" && strings.Contains(l, "grpc-status=Unknown") && strings.Contains(l, "tls=true") {
				unknown = true
			}
		}
		if err == nil && counts["req"] > 0 && counts["rsp"] > 0 && unknown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("viz tap deploy/web never showed web's calls to voting with an Unknown gRPC status (%v, %v):\n%s", err, counts, out)
		}
	}

	const path = "/linkerdgo.demo.v1.Voting/Vote"
	out := sh.must(ctx, time.Minute, "linkerd viz tap deploy/voting -n "+demoNS+" --method POST --path "+path+" -o json --max-rps 20 --duration 10s")
	reqs := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct {
			Namespace string `json:"namespace"`
			Pod       string `json:"pod"`
			Event     struct {
				Direction   string `json:"direction"`
				RequestInit *struct {
					Method string `json:"method"`
					Path   string `json:"path"`
				} `json:"requestInit"`
			} `json:"event"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("viz tap -o json: line %q: %v", l, err)
		}
		if ev.Namespace != demoNS || !strings.HasPrefix(ev.Pod, "voting-") {
			t.Errorf("viz tap -o json: event of pod %s/%s, want voting's", ev.Namespace, ev.Pod)
		}
		if r := ev.Event.RequestInit; r != nil {
			reqs++
			if r.Method != "POST" || !strings.HasPrefix(r.Path, path) {
				t.Errorf("viz tap --method POST --path %s: request %s %s", path, r.Method, r.Path)
			}
		}
	}
	if reqs == 0 {
		t.Errorf("viz tap deploy/voting --path %s -o json: no requests in 10s:\n%s", path, out)
	}
}

// dashboardLiveCalls reads the dashboard's live calls of web (its API, as
// the page does) through `linkerd viz dashboard`'s port-forward: the web
// server streams them from the tap service, and the failing vote shows.
func dashboardLiveCalls(ctx context.Context, t *testing.T, sh *shell) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	const port = "18084"
	bin, _, _ := strings.Cut(sh.path, ":") // the shell's linkerd
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "linkerd"), "viz", "dashboard", "--port", port, "--show", "url")
	cmd.Env = []string{"PATH=" + sh.path, "HOME=" + sh.home, "KUBECONFIG=" + sh.kcfg}
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		t.Logf("linkerd viz dashboard:\n%s", indent(out.String()))
	}()
	base := "http://localhost:" + port
	u := base + "/api/namespaces/" + demoNS + "/tap?resource=deployment/web&to=deployment/voting&duration=10s"
	for {
		calls, failed, err := readLiveCalls(ctx, u)
		if err == nil && calls > 0 && failed {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the dashboard's live calls of web never showed the failing vote to voting (calls %d, %v)", calls, err)
		}
		time.Sleep(time.Second)
	}
}

// readLiveCalls reads a live-calls stream to its end: how many calls came,
// and whether one failed with gRPC status Unknown.
func readLiveCalls(ctx context.Context, u string) (int, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	calls, failed := 0, false
	event := ""
	for _, l := range strings.Split(string(body), "\n") {
		switch {
		case strings.HasPrefix(l, "event: "):
			event = strings.TrimPrefix(l, "event: ")
		case strings.HasPrefix(l, "data: ") && event == "call":
			var c struct {
				GRPCStatusName string `json:"grpcStatusName"`
				Failed         bool   `json:"failed"`
			}
			if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &c); err != nil {
				return calls, failed, fmt.Errorf("call %q: %w", l, err)
			}
			calls++
			if c.Failed && strings.HasPrefix(c.GRPCStatusName, "Unknown") {
				failed = true
			}
		case strings.HasPrefix(l, "data: ") && event == "error":
			return calls, failed, errors.New(l)
		}
	}
	return calls, failed, nil
}

// policyStep annotates the demo namespace with the default inbound policy
// all-authenticated and restarts the demo: a request from the node (an
// unmeshed client) to web gets 403 from web's proxy, while the bot's
// meshed traffic through web keeps being allowed.
func policyStep(ctx context.Context, t *testing.T, n *cluster.Node, sh *shell) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DialContext: n.DialContext}, Timeout: 10 * time.Second}
	webIP := func() string {
		pods, err := n.Client.CoreV1().Pods(demoNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Status.PodIP != "" {
				return p.Status.PodIP
			}
		}
		t.Fatal("no web pod with an IP")
		return ""
	}
	unmeshedGet := func(ip string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip, "8080")+"/", nil)
		if err != nil {
			return 0, "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("l5d-proxy-error"), nil
	}
	if code, _, err := unmeshedGet(webIP()); err != nil || code == http.StatusForbidden {
		t.Fatalf("before the policy, an unmeshed GET to web: status %d, err %v; want it allowed", code, err)
	}

	sh.must(ctx, time.Minute, "kubectl annotate namespace "+demoNS+" --overwrite "+k8s.ProxyDefaultInboundPolicyAnnotation+"=all-authenticated")
	sh.must(ctx, time.Minute, "kubectl -n "+demoNS+" rollout restart deploy")
	sh.must(ctx, 4*time.Minute, "kubectl -n "+demoNS+" rollout status deploy --timeout=3m")
	waitRolledOut(ctx, t, n, demoNS, demoApps)

	ip := webIP()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, reason, err := unmeshedGet(ip)
		if err == nil && code == http.StatusForbidden {
			t.Logf("unmeshed GET to web refused: %d (l5d-proxy-error: %s)", code, reason)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2m, an unmeshed GET to web: status %d, err %v; want 403", code, err)
		}
		time.Sleep(2 * time.Second)
	}

	// The bot's requests through web are still allowed, by the default.
	allowed := map[string]string{"srv_kind": "default", "srv_name": "all-authenticated", "authz_name": "all-authenticated"}
	deadline = time.Now().Add(2 * time.Minute)
	first := -1.0
	for {
		text, err := scrape(ctx, client, ip)
		if err == nil {
			got := sum(text, "inbound_http_authz_allow_total", allowed)
			denied := sum(text, "inbound_http_authz_deny_total", map[string]string{"srv_name": "all-authenticated"})
			served := sum(text, "response_total", map[string]string{"direction": "inbound", "authz_name": "all-authenticated", "classification": "success"})
			if first < 0 && got > 0 {
				first = got
			}
			if first > 0 && got >= first+minRequests && denied >= 1 && served > 0 {
				t.Logf("web: %v meshed requests allowed by all-authenticated, %v denied, %v successful responses so labelled", got, denied, served)
				break
			}
			if time.Now().After(deadline) {
				t.Logf("web's proxy metrics:\n%s", grepMetrics(text))
				t.Fatalf("after 2m: allowed %v (first %v), denied %v, successful %v; want the meshed traffic allowed and the unmeshed request denied", got, first, denied, served)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("scraping web's proxy: %v", err)
		}
		time.Sleep(2 * time.Second)
	}

	// The CLI shows the default that applies to web, and the requests it
	// allowed by it (from Prometheus, once scraped).
	out := sh.must(ctx, time.Minute, "linkerd authz -n "+demoNS+" deploy/web")
	if !strings.Contains(out, "default:all-authenticated") {
		t.Errorf("linkerd authz deploy/web: want the all-authenticated default, got:\n%s", out)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		out, _, err := sh.run(ctx, time.Minute, "linkerd viz authz -n "+demoNS+" deploy/web")
		if err == nil && slices.ContainsFunc(strings.Split(out, "\n"), func(line string) bool {
			f := strings.Fields(line)
			return len(f) > 2 && f[1] == "default:all-authenticated" && f[2] == "default:all-authenticated"
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("linkerd viz authz deploy/web never showed requests allowed by all-authenticated (%v):\n%s", err, out)
		}
		time.Sleep(5 * time.Second)
	}
}

// waitStat runs `linkerd viz stat deploy -n demo` until every demo
// deployment has a success rate and the rates have the demo's shape: items
// 100%, voting and web below (a rate over the 1m window counts only what
// happened between two scrapes, so a failed vote shows once Prometheus
// has scraped both sides after it), all meshed.
func waitStat(ctx context.Context, t *testing.T, sh *shell) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _, err := sh.run(ctx, time.Minute, "linkerd viz stat deploy -n "+demoNS)
		rates, meshed := parseStat(out)
		if err == nil && len(rates) >= 3 {
			for _, d := range demoApps {
				if meshed[d] != "1/1" {
					t.Errorf("viz stat: deployment %s meshed %q, want 1/1", d, meshed[d])
				}
			}
			shaped := rates["items"] == 100 && rates["voting"] < 100 && rates["web"] < 100
			if shaped {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("viz stat success rates %v after 3m: want items 100%%, voting and web below:\n%s", rates, out)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("linkerd viz stat deploy: no success rates for web, items and voting after 3m (last: %v):\n%s", err, out)
		}
		time.Sleep(5 * time.Second)
	}
}

// parseStat reads `linkerd viz stat` table output: the SUCCESS column (in
// percent, rows with "-" left out) and the MESHED column, by NAME.
func parseStat(out string) (map[string]float64, map[string]string) {
	rates, meshed := map[string]float64{}, map[string]string{}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		return rates, meshed
	}
	head := strings.Fields(lines[0])
	col := func(name string) int { return slices.Index(head, name) }
	nameCol, meshedCol, successCol := col("NAME"), col("MESHED"), col("SUCCESS")
	if nameCol < 0 || meshedCol < 0 || successCol < 0 {
		return rates, meshed
	}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != len(head) {
			continue
		}
		meshed[f[nameCol]] = f[meshedCol]
		if v, err := strconv.ParseFloat(strings.TrimSuffix(f[successCol], "%"), 64); err == nil {
			rates[f[nameCol]] = v
		}
	}
	return rates, meshed
}

// vizApps are the viz extension's Deployments.
var vizApps = []string{vizcheck.MetricsAPIName, vizcheck.WebName, vizcheck.PrometheusName, vizcheck.TapName, vizcheck.TapInjectorName}

// waitVizMetrics queries the extension's Prometheus (its pod, through the
// node) until the demo's inbound responses are there by deployment, with
// the failures on voting, then checks the success rates they give: items
// 100%, voting and web (which passes voting's failures on) below.
func waitVizMetrics(ctx context.Context, t *testing.T, n *cluster.Node) {
	t.Helper()
	pods, err := n.Client.CoreV1().Pods(vizNS).List(ctx, metav1.ListOptions{LabelSelector: vizcheck.ComponentLabel + "=" + vizcheck.PrometheusName})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("the prometheus pod: %v (%d pods)", err, len(pods.Items))
	}
	base := "http://" + net.JoinHostPort(pods.Items[0].Status.PodIP, fmt.Sprint(vizcheck.PrometheusPort))
	client := &http.Client{Transport: &http.Transport{DialContext: n.DialContext}, Timeout: 10 * time.Second}
	query := func(q string) (map[string]float64, []vizcheck.Sample, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape(q), nil)
		if err != nil {
			return nil, nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, nil, err
		}
		samples, err := vizcheck.ParseQueryResponse(body)
		if err != nil {
			return nil, nil, err
		}
		byDeploy := map[string]float64{}
		for _, s := range samples {
			v, err := strconv.ParseFloat(s.Value, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("sample %v: %w", s, err)
			}
			byDeploy[s.Metric["deployment"]] = v
		}
		return byDeploy, samples, nil
	}
	const sel = `namespace="demo",direction="inbound"`
	total := `sum by (deployment) (response_total{` + sel + `})`
	failed := `sum by (deployment) (response_total{` + sel + `,classification="failure"})`
	deadline := time.Now().Add(3 * time.Minute)
	for {
		all, _, err1 := query(total)
		bad, _, err2 := query(failed)
		if err1 == nil && err2 == nil && all["web"] >= minRequests && all["items"] >= minRequests && all["voting"] >= minRequests && bad["voting"] > 0 {
			rate := func(d string) float64 { return (all[d] - bad[d]) / all[d] }
			for _, d := range []string{"web", "items", "voting"} {
				t.Logf("prometheus: deployment %s: %v responses, %v failures: success %.2f%%", d, all[d], bad[d], 100*rate(d))
			}
			if rate("items") != 1 || rate("voting") >= 1 || rate("web") >= 1 {
				t.Errorf("success rates: web %.4f, items %.4f, voting %.4f; want items 1, voting and web below", rate("web"), rate("items"), rate("voting"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3m, prometheus has (%v) %v responses and (%v) %v failures by deployment; want web, items and voting with %d+ each and failures on voting", err1, all, err2, bad, minRequests)
		}
		time.Sleep(3 * time.Second)
	}
	// The pod's metadata became the series' labels.
	_, samples, err := query(`response_total{` + sel + `,deployment="web"}`)
	if err != nil || len(samples) == 0 {
		t.Fatalf("web's series: %v (%d)", err, len(samples))
	}
	m := samples[0].Metric
	if m["namespace"] != demoNS || !strings.HasPrefix(m["pod"], "web-") || m["job"] != vizclient.ProxyScrapeJob || m["workload_ns"] != demoNS {
		t.Errorf("a series of web's: labels %v; want namespace, pod, job and workload_ns from the pod", m)
	}
}

// containerColumns makes kubectl get pods list each pod's containers.
const containerColumns = "-o custom-columns=NAME:.metadata.name,CONTAINERS:.spec.containers[*].name"

// checkPodList checks the output of kubectl get pods: want pods, each
// Running with all its containers ready (READY n/n), at least two.
func checkPodList(t *testing.T, out string, want int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines)-1 != want {
		t.Fatalf("kubectl get pods: want %d pods, got:\n%s", want, out)
	}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Errorf("kubectl get pods: unexpected line %q", line)
			continue
		}
		ready, total, _ := strings.Cut(f[1], "/")
		if n, err := strconv.Atoi(total); err != nil || n < 2 || ready != total || f[2] != "Running" {
			t.Errorf("kubectl get pods: want all containers (2 or more) ready and Running, got %q", line)
		}
	}
}

// checkContainerList checks that every pod in the output of kubectl get
// pods with containerColumns lists linkerd-proxy.
func checkContainerList(t *testing.T, out string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 || !slices.Contains(strings.Split(f[1], ","), k8s.ProxyContainerName) {
			t.Errorf("kubectl get pods: want %s among the containers, got %q", k8s.ProxyContainerName, line)
		}
	}
}

// checkMeshedPods checks that every pod of ns runs, is ready and has a
// linkerd-proxy container, and that there is one pod per named workload
// (by the pods' names' prefix).
func checkMeshedPods(ctx context.Context, t *testing.T, n *cluster.Node, ns string, workloads []string) {
	t.Helper()
	pods, err := n.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		var containers []string
		for _, c := range p.Spec.Containers {
			containers = append(containers, c.Name)
		}
		if !slices.Contains(containers, k8s.ProxyContainerName) {
			t.Errorf("pod %s/%s has containers %v, no %s", ns, p.Name, containers, k8s.ProxyContainerName)
		}
		if len(containers) < 2 {
			t.Errorf("pod %s/%s has containers %v, want the workload's and the proxy", ns, p.Name, containers)
		}
		ready := 0
		for _, s := range p.Status.ContainerStatuses {
			if s.Ready {
				ready++
			}
		}
		if p.Status.Phase != corev1.PodRunning || ready != len(containers) {
			t.Errorf("pod %s/%s: %s, %d/%d containers ready", ns, p.Name, p.Status.Phase, ready, len(containers))
		}
		if o := k8s.PodOwner(&p); slices.Contains(workloads, o.Name) {
			seen[o.Name]++
		}
	}
	for _, w := range workloads {
		if seen[w] != 1 {
			t.Errorf("namespace %s: %d pods of %s, want 1", ns, seen[w], w)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// waitRolledOut waits until the old, unmeshed pods of the workloads are
// gone (rollout status returns when the new ones are available, while the
// old ones may still be terminating).
func waitRolledOut(ctx context.Context, t *testing.T, n *cluster.Node, ns string, workloads []string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods, err := n.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == len(workloads) {
			return
		}
		if time.Now().After(deadline) {
			var names []string
			for _, p := range pods.Items {
				names = append(names, p.Name)
			}
			t.Fatalf("namespace %s: pods %v 2m after the rollout, want %d", ns, names, len(workloads))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// edge is one meshed hop of the demo's traffic, as seen by one side's proxy.
type edge struct {
	app    string            // the pod whose proxy is scraped
	labels map[string]string // labels request_total must carry
}

func id(sa string) string {
	return identity.Name(sa, demoNS, controlNS, cluster.ClusterDomain)
}

// edges are the demo's meshed hops, from both ends: the client's outbound
// side names the server's identity, the server's inbound side the client's.
func edges() []edge {
	out := func(from, to string) edge {
		return edge{from, map[string]string{"direction": "outbound", "tls": "true", "server_id": id(to)}}
	}
	in := func(from, to string) edge {
		return edge{to, map[string]string{"direction": "inbound", "tls": "true", "client_id": id(from)}}
	}
	return []edge{
		out("bot", "web"), in("bot", "web"),
		out("web", "items"), in("web", "items"),
		out("web", "voting"), in("web", "voting"),
	}
}

// waitMTLS scrapes every demo proxy's metrics until each edge shows at
// least minRequests requests and responses over mTLS.
func waitMTLS(ctx context.Context, t *testing.T, n *cluster.Node) {
	t.Helper()
	pods, err := n.Client.CoreV1().Pods(demoNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ips := map[string]string{}
	for _, p := range pods.Items {
		ips[p.Labels["app"]] = p.Status.PodIP
	}
	client := &http.Client{Transport: &http.Transport{DialContext: n.DialContext}, Timeout: 10 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	var pending []string
	var last map[string]string
	for {
		pending = pending[:0]
		last = map[string]string{}
		for _, app := range demoApps {
			text, err := scrape(ctx, client, ips[app])
			if err != nil {
				last[app] = err.Error()
				continue
			}
			last[app] = text
		}
		for _, e := range edges() {
			for _, metric := range []string{"request_total", "response_total"} {
				if got := sum(last[e.app], metric, e.labels); got < minRequests {
					pending = append(pending, fmt.Sprintf("%s's %s%v = %v", e.app, metric, e.labels, got))
				}
			}
		}
		if len(pending) == 0 {
			for _, e := range edges() {
				t.Logf("%s: request_total%v = %v", e.app, e.labels, sum(last[e.app], "request_total", e.labels))
			}
			return
		}
		if time.Now().After(deadline) {
			for _, app := range demoApps {
				t.Logf("%s's proxy metrics (request/response/tcp lines):\n%s", app, grepMetrics(last[app]))
			}
			t.Fatalf("after 2m, edges with fewer than %d mTLS requests:\n  %s", minRequests, strings.Join(pending, "\n  "))
		}
		time.Sleep(2 * time.Second)
	}
}

func scrape(ctx context.Context, client *http.Client, ip string) (string, error) {
	if ip == "" {
		return "", fmt.Errorf("no pod IP")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip, fmt.Sprint(k8s.DefaultProxyAdminPort))+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return string(body), nil
}

// sum adds up the samples of metric that carry all of want's labels.
func sum(text, metric string, want map[string]string) float64 {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return 0
	}
	fam := fams[metric]
	if fam == nil {
		return 0
	}
	var total float64
	for _, m := range fam.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if have[k] != v {
				match = false
			}
		}
		if match && m.Counter != nil {
			total += m.Counter.GetValue()
		}
	}
	return total
}

func grepMetrics(text string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, "request_total") || strings.HasPrefix(line, "response_total") || strings.HasPrefix(line, "tcp_open_total") {
			b.WriteString("    " + line + "\n")
		}
	}
	if b.Len() == 0 {
		return "    (none) " + text + "\n"
	}
	return b.String()
}

// diagnose logs what helps find why the walkthrough failed: every pod, the
// events, and the descriptions and logs of the pods in namespaces.
func diagnose(t *testing.T, n *cluster.Node, namespaces ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kubectl := func(args ...string) string {
		out, stderr, err := n.RunKubectl(ctx, args...)
		if err != nil {
			return fmt.Sprintf("(kubectl %s: %v: %s)\n%s", strings.Join(args, " "), err, stderr, out)
		}
		return out
	}
	t.Logf("pods:\n%s", kubectl("get", "pods", "-A", "-o", "wide"))
	for _, ns := range namespaces {
		t.Logf("events in %s:\n%s", ns, kubectl("-n", ns, "get", "events", "--sort-by=.lastTimestamp"))
		pods, err := n.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Logf("listing pods in %s: %v", ns, err)
			continue
		}
		for _, p := range pods.Items {
			t.Logf("describe pod %s/%s:\n%s", ns, p.Name, kubectl("-n", ns, "describe", "pod", p.Name))
			var containers []string
			for _, c := range p.Spec.InitContainers {
				containers = append(containers, c.Name)
			}
			for _, c := range p.Spec.Containers {
				containers = append(containers, c.Name)
			}
			restarted := map[string]bool{}
			for _, s := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
				restarted[s.Name] = s.RestartCount > 0
			}
			for _, c := range containers {
				t.Logf("logs %s/%s -c %s:\n%s", ns, p.Name, c, kubectl("-n", ns, "logs", p.Name, "-c", c, "--tail=150"))
				if restarted[c] {
					t.Logf("previous logs %s/%s -c %s:\n%s", ns, p.Name, c, kubectl("-n", ns, "logs", p.Name, "-c", c, "--previous", "--tail=80"))
				}
			}
		}
	}
}
