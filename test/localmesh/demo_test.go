package localmesh_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testnet"
	"github.com/linkerd-go/linkerd/pkg/localmesh"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemo runs `linkerd demo` as a user would: from nothing to the demo
// app's traffic flowing, meshed with mTLS on every edge, with the broken
// choice (and only it) failing; Ctrl-C then leaves nothing behind.
func TestDemo(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables", "unshare")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd", "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-controller", "./cmd/linkerd-demo")
	base, err := os.MkdirTemp("", "l5dl-demo-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, linkerd: bins["linkerd"], stateDir: filepath.Join(base, "state"), binDir: filepath.Dir(bins["linkerd-proxy"])}

	start := time.Now()
	cmd := exec.Command(c.linkerd, "demo", "--state-dir", c.stateDir, "--bin-dir", c.binDir, "--rate", "10", "--for", "3m")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
		t.Logf("linkerd demo output:\n%s", out.String())
	})

	// Up: every demo workload recorded and the bot's votes reaching web.
	var bot, web, prom *localmesh.Workload
	deadline := time.Now().Add(60 * time.Second)
	for bot == nil || web == nil {
		if time.Now().After(deadline) {
			t.Fatalf("demo workloads never appeared:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := os.Stat(filepath.Join(c.stateDir, "state.json")); err != nil {
			continue
		}
		s := c.state()
		for _, w := range s.Workloads {
			switch {
			case w.Namespace == "demo" && w.Name == "bot":
				bot = w
			case w.Namespace == "demo" && w.Name == "web":
				web = w
			case w.Namespace == localmesh.VizNamespace && w.Name == "prometheus":
				prom = w
			}
		}
	}
	// Workloads are recorded before their pods finish starting.
	for _, w := range []*localmesh.Workload{bot, web} {
		waitReady(t, w)
	}
	webID := "web.demo.serviceaccount.identity.linkerd.cluster.local"
	waitMetric(t, bot, "response_total", map[string]string{"direction": "outbound", "tls": "true", "server_id": webID,
		"classification": "success"}, 1)
	elapsed := time.Since(start)
	t.Logf("from nothing to meshed traffic in %v", elapsed)
	if elapsed > 30*time.Second {
		t.Errorf("the demo took %v to come up, want < 30s", elapsed)
	}

	// The broken choice: 500s on the bot->web edge, gRPC Unknown on web->voting.
	waitMetric(t, bot, "response_total", map[string]string{"direction": "outbound", "server_id": webID,
		"status_code": "500", "classification": "failure"}, 1)
	waitMetric(t, web, "response_total", map[string]string{"direction": "outbound", "tls": "true",
		"server_id": "voting.demo.serviceaccount.identity.linkerd.cluster.local", "grpc_status": "2", "classification": "failure"}, 1)
	waitMetric(t, web, "response_total", map[string]string{"direction": "outbound", "tls": "true",
		"server_id": "items.demo.serviceaccount.identity.linkerd.cluster.local", "classification": "success"}, 1)
	// Nothing else fails: every failure on the web->voting edge is the gRPC
	// error, and web->items never fails; every outbound connection is mTLS.
	if n := metric(t, web, "response_total", map[string]string{"direction": "outbound", "dst_service": "items", "classification": "failure"}); n != 0 {
		t.Errorf("%v failed requests from web to items", n)
	}
	votingFailures := metric(t, web, "response_total", map[string]string{"direction": "outbound", "dst_service": "voting", "classification": "failure"})
	brokenVotes := metric(t, web, "response_total", map[string]string{"direction": "outbound", "dst_service": "voting", "classification": "failure", "grpc_status": "2"})
	if votingFailures != brokenVotes {
		t.Errorf("web->voting: %v failures, of which %v are the broken choice", votingFailures, brokenVotes)
	}
	for _, w := range []*localmesh.Workload{bot, web} {
		if n := metric(t, w, "tcp_open_total", map[string]string{"direction": "outbound", "peer": "dst", "tls": "no_identity"}); n != 0 {
			t.Errorf("%s opened %v connections without mTLS", w.Name, n)
		}
	}

	// A real Prometheus scrapes every proxy, with the pods' labels.
	if prom == nil {
		t.Fatal("no prometheus pod in the local mesh (is prometheus installed?)")
	}
	for _, q := range []string{
		`sum(response_total{namespace="demo",deployment="web",direction="outbound",classification="failure"})`,
		`sum(response_total{namespace="demo",deployment="bot",direction="outbound",tls="true"})`,
	} {
		if v := promQuery(t, prom, q); v <= 0 {
			t.Errorf("prometheus: %s = %v, want > 0", q, v)
		}
	}

	// Ctrl-C: everything stops and is cleaned up.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if exitErr != nil {
			t.Errorf("linkerd demo exited with %v", exitErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("linkerd demo did not stop after SIGINT")
	}
	if left, err := localmesh.ListNetNS(localmesh.NamePrefix(c.stateDir)); err != nil || len(left) != 0 {
		t.Errorf("namespaces left after the demo: %v %v", left, err)
	}
	if _, err := os.Stat(filepath.Join(c.stateDir, "state.json")); !os.IsNotExist(err) {
		t.Errorf("state left after the demo: %v", err)
	}
}

// promQuery polls an instant query on the mesh's Prometheus (from inside its
// pod) until it returns a positive value or 30 s pass; it returns the value.
func promQuery(t *testing.T, prom *localmesh.Workload, query string) float64 {
	t.Helper()
	c := localmesh.HTTPClient(prom.NetNS, 5*time.Second)
	u := fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", localmesh.PrometheusPort, url.QueryEscape(query))
	deadline := time.Now().Add(30 * time.Second)
	for {
		var v float64
		if resp, err := c.Get(u); err == nil {
			var body struct {
				Data struct {
					Result []struct {
						Value []any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err == nil && len(body.Data.Result) > 0 && len(body.Data.Result[0].Value) == 2 {
				s, _ := body.Data.Result[0].Value[1].(string)
				v, _ = strconv.ParseFloat(s, 64)
			}
		}
		if v > 0 || time.Now().After(deadline) {
			return v
		}
		time.Sleep(time.Second)
	}
}

// waitReady waits until the pod's proxy answers /ready.
func waitReady(t *testing.T, w *localmesh.Workload) {
	t.Helper()
	c := localmesh.HTTPClient(w.NetNS, 2*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get("http://127.0.0.1:4191/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy of %s/%s never ready: %v", w.Namespace, w.Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
