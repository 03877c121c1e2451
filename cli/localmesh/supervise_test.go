package localmesh

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testkit"
)

// asRoot makes CheckPrivileges pass for the test.
func asRoot(t *testing.T) {
	t.Helper()
	origUID, origStatus := geteuid, procStatus
	geteuid = func() int { return 0 }
	procStatus = func() ([]byte, error) { return []byte("CapEff:\t000001ffffffffff\n"), nil }
	t.Cleanup(func() { geteuid, procStatus = origUID, origStatus })
}

// TestSupervise runs a supervisor over an application without a port (no
// network namespace needed): its endpoint is ready while it runs, not ready
// as soon as it is killed, and ready again once restarted; cancelling the
// supervisor stops the application.
func TestSupervise(t *testing.T) {
	asRoot(t)
	dir, err := os.MkdirTemp("", "l5dl-sup-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	m, err := New(Config{StateDir: dir, BinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	w := &Workload{Name: "x", Namespace: "demo", ServiceAccount: "x", Service: "x", IP: netip.MustParseAddr("10.250.0.5")}
	w.App = &Proc{Role: roleApp, Log: filepath.Join(m.podDir(w), "app.log"), Args: []string{"sh", "-c", "echo started; exec sleep 60"}}
	s := &State{Subnet: netip.MustParsePrefix(DefaultSubnet), ServiceCIDR: netip.MustParsePrefix(DefaultServiceCIDR),
		Services: map[string]netip.Addr{"demo/x": netip.MustParseAddr("10.96.0.10")}, Workloads: []*Workload{w}}
	for _, d := range []string{m.StoreDir(), m.podDir(w)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := saveState(m.statePath(), s); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var supErr error
	done := make(chan struct{})
	go func() { supErr = m.Supervise(ctx, "demo", "x"); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the supervisor did not stop")
		}
	})

	storeFile := filepath.Join(m.StoreDir(), storeFileName("demo", "x"))
	waitFor := func(what string, cond func(AppStatus, string) bool) AppStatus {
		t.Helper()
		var st AppStatus
		testkit.Eventually(t, 30*time.Second, func() error {
			st, _ = readAppStatus(m.appStatusPath(w))
			b, _ := os.ReadFile(storeFile)
			if !cond(st, string(b)) {
				return fmt.Errorf("%s: status %+v, store:\n%s", what, st, b)
			}
			return nil
		})
		return st
	}
	first := waitFor("ready", func(st AppStatus, store string) bool {
		return st.Ready && st.Running() && strings.Contains(store, "conditions: {ready: true}")
	})
	if first.Restarts != 0 || first.LastExit != "" {
		t.Fatalf("first start: %+v", first)
	}
	// Ready (no port) once started: its output may come a moment later.
	// Kill it only once it has spoken, or its one start leaves no line.
	waitStarts := func(n int) {
		t.Helper()
		testkit.Eventually(t, 30*time.Second, func() error {
			if b, _ := os.ReadFile(w.App.Log); strings.Count(string(b), "started") != n {
				return fmt.Errorf("app log %q, want %d starts", b, n)
			}
			return nil
		})
	}
	waitStarts(1)
	killedAt := time.Now()
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	down := waitFor("not ready after the kill", func(st AppStatus, store string) bool {
		return !st.Ready && strings.Contains(store, "conditions: {ready: false}")
	})
	if down.Restarts != 0 {
		t.Errorf("the endpoint was marked not ready only after the restart (%d restarts, %v after the kill)", down.Restarts, time.Since(killedAt))
	}
	if down.LastExit != "signal: killed" {
		t.Errorf("last exit %q", down.LastExit)
	}
	again := waitFor("restarted", func(st AppStatus, store string) bool {
		return st.Ready && st.Running() && st.Restarts == 1 && strings.Contains(store, "conditions: {ready: true}")
	})
	if again.PID == first.PID {
		t.Errorf("restarted with the same pid %d", again.PID)
	}
	waitStarts(2)

	cancel()
	select {
	case <-done:
		if supErr != nil {
			t.Fatalf("Supervise: %v", supErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the supervisor did not stop")
	}
	if again.Running() {
		t.Errorf("the application (pid %d) outlived its supervisor", again.PID)
	}
}

func TestSuperviseUnknownWorkload(t *testing.T) {
	asRoot(t)
	dir := t.TempDir()
	m, err := New(Config{StateDir: dir, BinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Supervise(context.Background(), "demo", "x"); !errors.Is(err, ErrNotUp) {
		t.Fatalf("no state: %v, want ErrNotUp", err)
	}
	if err := saveState(m.statePath(), &State{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Supervise(context.Background(), "demo", "x"); err == nil || !strings.Contains(err.Error(), "no supervised workload demo/x") {
		t.Fatalf("unknown workload: %v", err)
	}
}

func TestListensOn(t *testing.T) {
	const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:10F7 0100007F:B3A2 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0B00FA0A:1FB6 0200FA0A:D3C4 06 00000000:00000000 03:00000E0D 00000000     0        0 0 3 0000000000000000
`
	const tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
`
	for _, tt := range []struct {
		name string
		text string
		port int
		want bool
	}{
		{"listening v4", tcp, 8080, true},
		{"established only", tcp, 4343, false},
		{"time-wait only", tcp, 8118, false},
		{"absent", tcp, 9090, false},
		{"listening v6", tcp6, 80, true},
		{"empty", "", 80, false},
		{"malformed", "garbage\n  0: nocolon 0 0A\n", 80, false},
	} {
		if got := listensOn(bufio.NewScanner(strings.NewReader(tt.text)), tt.port); got != tt.want {
			t.Errorf("%s: port %d: %v, want %v", tt.name, tt.port, got, tt.want)
		}
	}
}

func TestListeningSelf(t *testing.T) {
	// This process's own namespace, through /proc/PID/net.
	if listening(os.Getpid(), 1) {
		t.Fatal("port 1 listening in the test's namespace")
	}
}

func TestExitString(t *testing.T) {
	if got := exitString(nil); got != "exit status 0" {
		t.Errorf("nil: %q", got)
	}
	if got := exitString(errors.New("boom")); got != "boom" {
		t.Errorf("other error: %q", got)
	}
}
