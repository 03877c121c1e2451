package localmesh_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/internal/syncbuf"
	"github.com/linkerd-go/linkerd/internal/testnet"
)

// TestVizDemo runs the demo on the local mesh and reads it the way a user
// does, with `linkerd viz` on the host (no kubeconfig needed: the mesh's
// state directory names it): the metrics API in the mesh answers from the
// mesh's real Prometheus, fed by the real proxies. The broken choice makes
// voting (its server) and web (its caller) succeed partly, items always;
// every edge is mTLS; `viz top` is read off a real terminal (tmux).
func TestVizDemo(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables", "unshare", "prometheus", "tmux")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd", "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-controller", "./cmd/linkerd-demo")
	base, err := os.MkdirTemp("", "l5dl-viz-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(base, "state")
	linkerd := bins["linkerd"]
	// A subnet of its own, so that the host link does not meet another
	// local mesh's (e.g. a developer's demo on the default subnet).
	demo := exec.Command(linkerd, "demo", "--state-dir", stateDir, "--bin-dir", filepath.Dir(bins["linkerd-proxy"]),
		"--subnet", "10.251.9.0/24", "--rate", "10", "--for", "5m")
	var out syncbuf.Buffer
	demo.Stdout, demo.Stderr = &out, &out
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = demo.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = demo.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = demo.Process.Kill()
		}
		t.Logf("linkerd demo output:\n%s", out.String())
	})

	viz := func(args ...string) (string, string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, linkerd, append(args, "--state-dir", stateDir)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		t.Logf("linkerd %s:\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
		return stdout.String(), stderr.String(), err
	}

	// Wait for the demo's traffic in Prometheus: every deployment with
	// requests in the window (the bot only sends, so it has none).
	var rows map[string][]string
	deadline := time.Now().Add(90 * time.Second)
	for {
		stdout, _, err := viz("viz", "stat", "deploy", "-n", "demo")
		if err == nil {
			rows = tableRows(stdout)
			// Every row there (Prometheus may not have scraped them all
			// yet), each with requests.
			if !slices.ContainsFunc([]string{"web", "voting", "items"}, func(name string) bool {
				rps := cell(rows, name, 2)
				return rps == "" || rps == "-"
			}) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("viz stat never showed the demo's traffic:\n%s", out.String())
		}
		time.Sleep(3 * time.Second)
	}
	if got := rows["NAME"]; strings.Join(got, " ") != "MESHED SUCCESS RPS LATENCY_P50 LATENCY_P95 LATENCY_P99 TCP_CONN" {
		t.Errorf("stat columns: %q", got)
	}
	for _, name := range []string{"bot", "items", "voting", "web"} {
		if got := cell(rows, name, 0); got != "1/1" {
			t.Errorf("%s MESHED = %q, want 1/1", name, got)
		}
	}
	if got := cell(rows, "items", 1); got != "100.00%" {
		t.Errorf("items SUCCESS = %q, want 100.00%%", got)
	}
	for _, name := range []string{"voting", "web"} {
		if sr := percent(t, cell(rows, name, 1)); sr <= 0 || sr >= 100 {
			t.Errorf("%s SUCCESS = %v%%, want between 0 and 100 (the broken choice fails, the others succeed)", name, sr)
		}
	}
	if got := cell(rows, "bot", 1); got != "-" {
		t.Errorf("bot SUCCESS = %q, want - (it receives no requests)", got)
	}

	// The same in JSON.
	stdout, _, err := viz("viz", "stat", "deploy", "-n", "demo", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var js []struct {
		Name    string   `json:"name"`
		Success *float64 `json:"success"`
		RPS     *float64 `json:"rps"`
	}
	if err := json.Unmarshal([]byte(stdout), &js); err != nil {
		t.Fatalf("stat -o json: %v", err)
	}
	for _, r := range js {
		if r.Name == "items" && (r.Success == nil || *r.Success != 1 || r.RPS == nil || *r.RPS <= 0) {
			t.Errorf("items in JSON: success %v rps %v, want 1 and > 0", r.Success, r.RPS)
		}
	}

	// web's outbound to voting (--to) is the caller's view: partly failing.
	stdout, _, err = viz("viz", "stat", "deploy/web", "-n", "demo", "--to", "deploy/voting")
	if err != nil {
		t.Fatal(err)
	}
	if sr := percent(t, cell(tableRows(stdout), "web", 1)); sr <= 0 || sr >= 100 {
		t.Errorf("web --to voting SUCCESS = %v%%, want between 0 and 100", sr)
	}

	// Edges: the demo's three, all mTLS.
	stdout, _, err = viz("viz", "edges", "deploy", "-n", "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bot web demo demo √", "web items demo demo √", "web voting demo demo √"} {
		if !hasLine(stdout, want) {
			t.Errorf("viz edges: no line %q", want)
		}
	}
	stdout, _, err = viz("viz", "edges", "deploy", "-n", "demo", "-o", "wide")
	if err != nil {
		t.Fatal(err)
	}
	if !hasLine(stdout, "web voting demo demo web.demo.serviceaccount.identity.linkerd.cluster.local voting.demo.serviceaccount.identity.linkerd.cluster.local -") {
		t.Errorf("viz edges -o wide does not show web->voting's identities")
	}

	// Routes: without ServiceProfiles, one [DEFAULT] route per service.
	stdout, _, err = viz("viz", "routes", "deploy/web", "-n", "demo")
	if err != nil {
		t.Fatal(err)
	}
	if r := tableRows(stdout)["[DEFAULT]"]; len(r) < 2 || r[0] != "web" || percent(t, r[1]) >= 100 {
		t.Errorf("viz routes deploy/web: [DEFAULT] row %q, want service web, partly failing", r)
	}
	stdout, _, err = viz("viz", "routes", "deploy/web", "-n", "demo", "--to", "deploy/items")
	if err != nil {
		t.Fatal(err)
	}
	if r := tableRows(stdout)["[DEFAULT]"]; len(r) < 2 || r[0] != "items" || r[1] != "100.00%" {
		t.Errorf("viz routes deploy/web --to deploy/items: [DEFAULT] row %q, want items at 100.00%%", r)
	}
	vizProfileRoutes(t, base, viz)

	// A proxy's raw metrics, from the host.
	stdout, _, err = viz("diagnostics", "proxy-metrics", "-n", "demo", "deploy/web")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout, "#\n# POD web (1 of 1)\n#\n") || !strings.Contains(stdout, "\nresponse_total{") {
		t.Errorf("proxy-metrics output lacks the pod header or response_total")
	}
	// Destination labels the local mesh's endpoints with their Deployment,
	// as a cluster's: outbound series carry dst_deployment.
	if !strings.Contains(stdout, `dst_deployment="voting"`) {
		t.Errorf("web's proxy metrics have no dst_deployment=\"voting\" label")
	}

	localMeshCLI(t, viz)

	// top, in a real terminal.
	vizTop(t, linkerd, stateDir)
	vizTap(t, linkerd, stateDir)
	vizProfileTap(t, linkerd, stateDir)
	profileFromProto(t, linkerd, stateDir)
	vizList(t, linkerd, stateDir)
	identity(t, linkerd, stateDir)

	// Bad input: one line on stderr, exit 1, no table.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"viz", "stat", "cronjob", "-n", "demo"}, `unknown resource kind "cronjob"`},
		{[]string{"viz", "stat", "deploy/nope", "-n", "demo"}, "deployment/nope not found in namespace demo"},
		{[]string{"viz", "stat", "deploy", "-n", "nope"}, "namespace nope not found"},
	} {
		stdout, stderr, err := viz(tc.args...)
		checkOneLineError(t, tc.args, stdout, stderr, err, tc.want)
	}
	// Prometheus gone: the metrics API says so, rather than "no traffic".
	s := readState(t, stateDir)
	prom := workload(t, s, localmesh.VizNamespace, "prometheus")
	for _, p := range prom.Procs {
		if p.Role == "prometheus" {
			if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	args := []string{"viz", "stat", "deploy", "-n", "demo"}
	stdout, stderr, err := viz(args...)
	checkOneLineError(t, args, stdout, stderr, err, fmt.Sprintf("cannot query Prometheus at http://%s:%d", prom.IP, localmesh.PrometheusPort))
}

// brokenVoteRow is a top row of the bot's votes for the broken choice.
var brokenVoteRow = regexp.MustCompile(`(?m)^bot +web +GET +/api/vote\?choice=\S+ .* 0\.00%\s*$`)

// vizTop runs `linkerd viz top deploy/web` in a tmux terminal, reads its
// screen until the demo's three edges (and a failing vote) are on it, then
// quits it with q.
func vizTop(t *testing.T, linkerd, stateDir string) {
	t.Helper()
	sock := fmt.Sprintf("l5d-viz-top-%d", os.Getpid())
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	cmdline := fmt.Sprintf("%s viz top deploy/web -n demo --interval 1s --state-dir %s; echo top exited $?; sleep 30", linkerd, stateDir)
	if out, err := tmux("new-session", "-d", "-s", "top", "-x", "160", "-y", "40", cmdline); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = tmux("kill-server") })
	var screen string
	deadline := time.Now().Add(60 * time.Second)
	for {
		screen, _ = tmux("capture-pane", "-p", "-t", "top")
		// The three edges, and a vote for the broken choice (one choice
		// among a dozen: it may take a few seconds to come).
		if strings.Contains(screen, "web      voting") && strings.Contains(screen, "bot      web") && strings.Contains(screen, "web      items") &&
			brokenVoteRow.MatchString(screen) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("viz top's screen never showed the demo's calls:\n%s", screen)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("viz top's screen:\n%s", screen)
	lines := strings.Split(screen, "\n")
	if lines[0] != "(press q to quit)" {
		t.Errorf("top's first line = %q", lines[0])
	}
	rows := tableRows(screen)
	if got := strings.Join(rows["Source"], " "); got != "Destination Method Path Count Best Worst Last Success Rate" {
		t.Errorf("top's columns: Source %s", got)
	}
	// From tap: a row per source, destination, method and path. The web
	// front end's path names the choice: the broken one is at 0%, the
	// others at 100%; web's calls to voting fail in part, to items never.
	var sawBroken, sawGood bool
	for _, r := range topRows(screen, "bot", "web") {
		if len(r) == 9 && r[3] == "/api/list" {
			continue // the bot reads the choices now and then
		}
		if len(r) != 9 || r[2] != "GET" || !strings.HasPrefix(r[3], "/api/vote?choice=") {
			t.Errorf("top: bot -> web row %q, want GET /api/vote?choice=...", r)
			continue
		}
		switch sr := percent(t, r[8]); sr {
		case 0:
			sawBroken = true
		case 100:
			sawGood = true
		default:
			t.Errorf("top: bot -> web %s success %v%%, want 0 or 100 per choice", r[3], sr)
		}
	}
	if !sawBroken || !sawGood {
		t.Errorf("top: bot -> web rows with 0%% (%v) and 100%% (%v) success expected", sawBroken, sawGood)
	}
	for _, f := range [][2]string{{"web", "voting"}, {"web", "items"}} {
		for _, r := range topRows(screen, f[0], f[1]) {
			if len(r) != 9 || r[2] != "POST" || !strings.HasPrefix(r[3], "/linkerdgo.demo.v1.") {
				t.Errorf("top: %s -> %s row %q, want a gRPC method", f[0], f[1], r)
				continue
			}
			if n, err := strconv.Atoi(r[4]); err != nil || n <= 0 {
				t.Errorf("top: %s -> %s count %q, want > 0", f[0], f[1], r[4])
			}
			sr := percent(t, r[8])
			if f[1] == "items" && sr != 100 || f[1] == "voting" && strings.HasSuffix(r[3], "/Vote") && (sr <= 0 || sr >= 100) {
				t.Errorf("top: %s -> %s %s success %v%%", f[0], f[1], r[3], sr)
			}
		}
	}
	if out, err := tmux("send-keys", "-t", "top", "q"); err != nil {
		t.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		screen, _ = tmux("capture-pane", "-p", "-t", "top")
		if strings.Contains(screen, "top exited 0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("viz top did not exit 0 on q:\n%s", screen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func checkOneLineError(t *testing.T, args []string, stdout, stderr string, err error, want string) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("linkerd %s: %v, want exit status 1", strings.Join(args, " "), err)
	}
	if stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
		t.Errorf("linkerd %s: stdout %q stderr %q, want nothing and one line with %q", strings.Join(args, " "), stdout, stderr, want)
	}
}

func readState(t *testing.T, stateDir string) *localmesh.State {
	t.Helper()
	return (&cli{t: t, stateDir: stateDir}).state()
}

// tableRows maps each line's first field to its other fields.
func tableRows(s string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			rows[f[0]] = f[1:]
		}
	}
	return rows
}

// cell returns field i (after the name) of the row named name, "" if none.
func cell(rows map[string][]string, name string, i int) string {
	if r := rows[name]; i < len(r) {
		return r[i]
	}
	return ""
}

// topRow returns the fields of top's row from src to dst.
func topRows(screen, src, dst string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(screen, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == src && f[1] == dst {
			rows = append(rows, f)
		}
	}
	return rows
}

func hasLine(s, fields string) bool {
	for _, line := range strings.Split(s, "\n") {
		if strings.Join(strings.Fields(line), " ") == fields {
			return true
		}
	}
	return false
}

func percent(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || !strings.HasSuffix(s, "%") {
		t.Errorf("%q is not a percentage", s)
		return -1
	}
	return v
}

// vizProfileRoutes applies a ServiceProfile for items on the running demo
// and waits for web's proxy to report its routes to `viz routes --to`; a
// profile whose regex does not compile is refused by local apply.
func vizProfileRoutes(t *testing.T, base string, viz func(args ...string) (string, string, error)) {
	t.Helper()
	profile := func(regex string) string {
		f := filepath.Join(base, "items-profile.yaml")
		doc := `apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: items.demo.svc.cluster.local, namespace: demo}
spec:
  routes:
  - name: items-list
    condition: {method: POST, pathRegex: '` + regex + `'}
  - name: items-find
    condition: {method: POST, pathRegex: '/linkerdgo\.demo\.v1\.Items/FindByID'}
`
		if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	args := []string{"local", "apply", "-f", profile(`/linkerdgo\.demo\.v1\.Items/(List`)}
	stdout, stderr, err := viz(args...)
	checkOneLineError(t, args, stdout, stderr, err, "spec.routes[0].condition.pathRegex")
	if _, _, err := viz("local", "apply", "-f", profile(`/linkerdgo\.demo\.v1\.Items/List`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		stdout, _, err := viz("viz", "routes", "deploy/web", "-n", "demo", "--to", "deploy/items")
		if err == nil {
			// The demo's votes call FindByID.
			if r := tableRows(stdout)["items-find"]; len(r) >= 2 && r[0] == "items" && r[1] == "100.00%" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("viz routes deploy/web --to deploy/items never showed the profile's route items-find")
		}
		time.Sleep(3 * time.Second)
	}
}

// localMeshCLI runs the control plane's commands against the running demo,
// as they run against a cluster: check (with the data plane and viz),
// version, diagnostics endpoints and policy.
func localMeshCLI(t *testing.T, linkerd func(args ...string) (string, string, error)) {
	t.Helper()
	stdout, _, err := linkerd("check", "--proxy")
	if err != nil {
		t.Errorf("linkerd check --proxy against the local mesh: %v", err)
	}
	for _, want := range []string{
		"√ the local mesh is up", "√ control plane pods are ready", "√ issuer cert is issued by the trust anchor",
		"√ control plane and cli versions match", "√ data plane proxies are ready", "√ viz extension self-check",
		"Status check results are √",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("linkerd check --proxy output lacks %q", want)
		}
	}

	stdout, _, err = linkerd("version")
	if err != nil || !strings.Contains(stdout, "Server version: ") || strings.Contains(stdout, "Server version: unavailable") {
		t.Errorf("linkerd version against the local mesh: %v, output %q; want the server's version", err, stdout)
	}

	authority := fmt.Sprintf("web.%s.svc.cluster.local:%d", localmesh.DemoNamespace, localmesh.DemoPort)
	stdout, _, err = linkerd("diagnostics", "endpoints", authority)
	if err != nil {
		t.Fatalf("diagnostics endpoints %s: %v", authority, err)
	}
	if !strings.Contains(stdout, "web.demo.serviceaccount.identity.linkerd.cluster.local") {
		t.Errorf("diagnostics endpoints %s does not list web's endpoint with its identity", authority)
	}
}
