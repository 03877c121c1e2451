package localmesh_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
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
	var bot, web *localmesh.Workload
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
			}
		}
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
