// Package dashboard_test runs viz's dashboard and Grafana dashboards
// against the demo on the local mesh: real proxies, a real Prometheus, the
// real metrics API and web server, and the dashboard in headless Chromium.
package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
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
	"github.com/linkerd-go/linkerd/internal/browsertest"
	"github.com/linkerd-go/linkerd/internal/syncbuf"
	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/internal/testnet"
	"github.com/linkerd-go/linkerd/viz/grafana"
	"github.com/linkerd-go/linkerd/viz/web/webtest"
)

// TestDashboard starts `linkerd demo`, then checks every Grafana panel's
// query against its Prometheus, and the dashboard in a browser.
func TestDashboard(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables", "unshare")
	if _, err := exec.LookPath("prometheus"); err != nil {
		testkit.SkipOrFail(t, "prometheus is not installed (apt install prometheus)")
	}
	chromium := browsertest.Find(t)
	bins := testnet.BuildBinaries(t, "./cmd/linkerd", "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-controller", "./cmd/linkerd-demo")
	artifacts := browsertest.ArtifactsDir(t, "dashboard")
	d := startDemo(t, bins)

	// The broken choice's failures and the healthy calls reach Prometheus.
	d.promWait(t, `sum(response_total{namespace="demo",deployment="web",direction="outbound",classification="failure"})`)
	d.promWait(t, `sum(response_total{namespace="demo",deployment="web",direction="outbound",dst_service="items",classification="success"})`)

	// The demo tells how to open the dashboard.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(d.out.String(), "linkerd viz dashboard --state-dir "+d.stateDir); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("linkerd demo does not print how to open the dashboard:\n%s", d.out.String())
			break
		}
	}
	t.Run("browser", func(t *testing.T) {
		// The dashboard as a user opens it: linkerd viz dashboard forwards
		// a local port to the local mesh's web pod.
		base := startDashboardCLI(t, bins["linkerd"], d.stateDir)
		webtest.CheckDemo(browsertest.Start(t, chromium, artifacts), base)
	})
	// Rates need two scrapes of a series within their window.
	for _, q := range []string{
		`sum(rate(response_total{namespace="demo",deployment="web",direction="inbound"}[1m]))`,
		`sum(rate(response_total{namespace="demo",deployment="web",direction="outbound"}[1m]))`,
		`sum(rate(tcp_read_bytes_total{namespace="demo",deployment="web"}[1m]))`,
	} {
		d.promWait(t, q)
	}
	t.Run("grafana", func(t *testing.T) { testGrafanaQueries(t, d) })
}

// demo is a running `linkerd demo`.
type demo struct {
	stateDir string
	prom     *localmesh.Workload
	out      *syncbuf.Buffer // what linkerd demo printed
}

func startDemo(t *testing.T, bins map[string]string) *demo {
	t.Helper()
	base, err := os.MkdirTemp("", "l5d-dash-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &demo{stateDir: filepath.Join(base, "state")}
	// A subnet of its own: with other local meshes up at the same time
	// (test packages run in parallel), the host links to each.
	cmd := exec.Command(bins["linkerd"], "demo", "--state-dir", d.stateDir, "--bin-dir", filepath.Dir(bins["linkerd-proxy"]),
		"--subnet", "10.251.17.0/24", "--rate", "10", "--for", "10m")
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	d.out = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("linkerd demo output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("linkerd demo exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo's prometheus and web never came up:\n%s", out.String())
		}
		time.Sleep(500 * time.Millisecond)
		s := readState(t, d.stateDir)
		if s == nil {
			continue
		}
		d.prom = find(s, localmesh.VizNamespace, "prometheus")
		if d.prom != nil && find(s, localmesh.DemoNamespace, "web") != nil && find(s, localmesh.VizNamespace, "web") != nil {
			return d
		}
	}
}

func readState(t *testing.T, dir string) *localmesh.State {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil
	}
	var s localmesh.State
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func find(s *localmesh.State, ns, name string) *localmesh.Workload {
	for _, w := range s.Workloads {
		if w.Namespace == ns && w.Name == name {
			return w
		}
	}
	return nil
}

// promResult is the answer to an instant query.
type promResult struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

// promQuery runs an instant query on the demo's Prometheus, from its pod.
func (d *demo) promQuery(query string) (*promResult, error) {
	c := localmesh.HTTPClient(d.prom.NetNS, 10*time.Second)
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", localmesh.PrometheusPort, url.QueryEscape(query)))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r promResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("decoding the answer to %s: %w", query, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", query, r.Error)
	}
	return &r, nil
}

// promWait polls query until it returns a positive value (at most 60 s).
func (d *demo) promWait(t *testing.T, query string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := d.promQuery(query)
		if err == nil && len(r.Data.Result) > 0 && len(r.Data.Result[0].Value) == 2 {
			if v, _ := strconv.ParseFloat(fmt.Sprint(r.Data.Result[0].Value[1]), 64); v > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus never had %s > 0 (last: %+v, %v)", query, r, err)
		}
		time.Sleep(time.Second)
	}
}

// testGrafanaQueries runs every panel query of every dashboard, with the
// template variables set to the demo's values, and wants series back.
func testGrafanaQueries(t *testing.T, d *demo) {
	t.Helper()
	ds, err := grafana.Dashboards()
	if err != nil {
		t.Fatal(err)
	}
	// The authority web is called by (the bot's requests to it).
	r, err := d.promQuery(`sum(request_total{namespace="demo",deployment="web",direction="inbound"}) by (authority)`)
	if err != nil || len(r.Data.Result) == 0 {
		t.Fatalf("no inbound authority of web: %+v %v", r, err)
	}
	authority := r.Data.Result[0].Metric["authority"]
	values := map[string]string{"namespace": "demo", "deployment": "web", "pod": "web", "authority": authority, "datasource": "prometheus"}
	n := 0
	for _, dash := range ds {
		// Each variable's own query lists the demo's value.
		for _, v := range dash.Templating.List {
			if v.Type != "query" {
				continue
			}
			m := regexp.MustCompile(`^label_values\((.+), *(\w+)\)$`).FindStringSubmatch(v.Definition)
			if m == nil {
				t.Errorf("%s: variable %s: unexpected query %s", dash.UID, v.Name, v.Definition)
				continue
			}
			q, err := grafana.Expand(m[1], values)
			if err != nil {
				t.Error(err)
				continue
			}
			r, err := d.promQuery(fmt.Sprintf("count(%s) by (%s)", q, m[2]))
			if err != nil {
				t.Errorf("%s: variable %s: %v", dash.UID, v.Name, err)
				continue
			}
			var got []string
			for _, s := range r.Data.Result {
				got = append(got, s.Metric[m[2]])
			}
			if !slices.Contains(got, values[v.Name]) {
				t.Errorf("%s: variable %s offers %v, not the demo's %q", dash.UID, v.Name, got, values[v.Name])
			}
		}
		for _, q := range dash.Queries() {
			n++
			expr, err := grafana.Expand(q.Expr, values)
			if err != nil {
				t.Errorf("%s/%s: %v", q.Dashboard, q.Panel, err)
				continue
			}
			r, err := d.promQuery(expr)
			switch {
			case err != nil:
				t.Errorf("%s/%s/%s: %v", q.Dashboard, q.Panel, q.RefID, err)
			case len(r.Data.Result) == 0:
				t.Errorf("%s/%s/%s: no series for %s", q.Dashboard, q.Panel, q.RefID, expr)
			}
		}
	}
	t.Logf("%d dashboards, %d panel queries, each returned series", len(ds), n)
}

// startDashboardCLI runs `linkerd viz dashboard --show url` on a free port
// and returns the URL it prints; it is interrupted when the test ends.
func startDashboardCLI(t *testing.T, linkerd, stateDir string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, linkerd, "viz", "dashboard", "--state-dir", stateDir, "--port", "0", "--show", "url", "--wait", "60s")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		t.Logf("linkerd viz dashboard:\n%s", out.String())
	})
	urlLine := regexp.MustCompile(`(?m)^(http://\S+)$`)
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if m := urlLine.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("linkerd viz dashboard printed no URL:\n%s", out.String())
	return ""
}
