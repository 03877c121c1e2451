package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/linkerd-go/linkerd/internal/testkit"
)

// testCtx returns a context bounded for one test step.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// listNetNS returns the names of all named network namespaces.
func listNetNS(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read %s: %v", netnsDir, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// acceptOne accepts one connection in the background.
func acceptOne(t *testing.T, ln net.Listener) <-chan net.Conn {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

func recvConn(t *testing.T, ch <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("accept failed")
		}
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a connection")
		return nil
	}
}

// exchange writes msg on a and reads it on b, then the reverse.
func exchange(t *testing.T, a, b net.Conn, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	for _, dir := range []struct{ from, to net.Conn }{{a, b}, {b, a}} {
		if _, err := io.WriteString(dir.from, msg); err != nil {
			t.Fatalf("write: %v", err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(dir.to, buf); err != nil {
			t.Fatalf("read: %v", err)
		}
		if string(buf) != msg {
			t.Fatalf("read %q, want %q", buf, msg)
		}
	}
}

func TestTwoPodsTCP(t *testing.T) {
	n := New(t)
	a := n.AddPod("a")
	b := n.AddPod("b")
	if a.IP == b.IP || !n.Subnet.Contains(a.IP) || !n.Subnet.Contains(b.IP) {
		t.Fatalf("pod addresses %s, %s not distinct in %s", a.IP, b.IP, n.Subnet)
	}

	ln, err := b.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	accepted := acceptOne(t, ln)

	client, err := a.DialContext(testCtx(t), "tcp", b.Addr(uint16(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := recvConn(t, accepted)

	// The connection really came from pod A's address, i.e. from inside A.
	remote := netip.MustParseAddrPort(server.RemoteAddr().String())
	if remote.Addr() != a.IP {
		t.Fatalf("server saw peer %s, want pod a's address %s", remote, a.IP)
	}
	local := netip.MustParseAddrPort(client.LocalAddr().String())
	if local.Addr() != a.IP {
		t.Fatalf("client local address %s, want %s", local, a.IP)
	}
	exchange(t, client, server, "hello across the bridge")
}

func TestPodsAreIsolatedFromEachOtherAndTheHost(t *testing.T) {
	n := New(t)
	a := n.AddPod("a")
	b := n.AddPod("b")
	ctx := testCtx(t)

	// A loopback listener in pod B is not reachable on pod A's loopback.
	lnB, err := b.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lnB.Close()
	if c, err := a.DialContext(ctx, "tcp", lnB.Addr().String()); err == nil {
		c.Close()
		t.Fatalf("dial from pod a reached pod b's loopback listener %s", lnB.Addr())
	}
	// Pod B itself reaches it.
	c, err := b.DialContext(ctx, "tcp", lnB.Addr().String())
	if err != nil {
		t.Fatalf("dial inside pod b: %v", err)
	}
	c.Close()

	// The host's loopback is not the pod's.
	hostLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	if c, err := a.DialContext(ctx, "tcp", hostLn.Addr().String()); err == nil {
		c.Close()
		t.Fatalf("dial from pod a reached the host's listener %s", hostLn.Addr())
	}
	// And the test process's own dials still use the host namespace.
	hc, err := net.Dial("tcp", hostLn.Addr().String())
	if err != nil {
		t.Fatalf("host dial after pod dials: %v", err)
	}
	hc.Close()
}

func TestDialTraversesPodIptables(t *testing.T) {
	Require(t, "iptables")
	n := New(t)
	a := n.AddPod("a")
	b := n.AddPod("b")
	ctx := testCtx(t)

	// Something listening in A on 18080, nothing on B's port 80.
	ln, err := a.Listen("tcp", ":18080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	// Without a rule, B:80 refuses.
	if c, err := a.DialContext(ctx, "tcp", b.Addr(80)); err == nil {
		c.Close()
		t.Fatal("dial to b:80 succeeded with nothing listening")
	}

	// Like linkerd-init's outbound redirect, but for one destination.
	a.Exec(t, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", b.IP.String(), "--dport", "80",
		"-j", "REDIRECT", "--to-ports", "18080")

	accepted := acceptOne(t, ln)
	client, err := a.DialContext(ctx, "tcp", b.Addr(80))
	if err != nil {
		t.Fatalf("dial through redirect: %v", err)
	}
	defer client.Close()
	server := recvConn(t, accepted)
	if got := server.LocalAddr().(*net.TCPAddr).Port; got != 18080 {
		t.Fatalf("redirected connection landed on port %d, want 18080", got)
	}
	exchange(t, client, server, "redirected")

	// The rule lives only in pod A: pod B's own dial to itself is untouched.
	if c, err := b.DialContext(ctx, "tcp", b.Addr(80)); err == nil {
		c.Close()
		t.Fatal("pod a's iptables rule affected pod b")
	}
}

func TestProcessRunsInPod(t *testing.T) {
	n := New(t)
	a := n.AddPod("a")
	ctx := testCtx(t)

	// A long-running process via Start sees the pod's interfaces.
	proc := a.Start(t, ProcSpec{Path: "ip", Args: []string{"-o", "addr", "show"}})
	if err := proc.Wait(); err != nil {
		t.Fatalf("ip addr: %v\n%s", err, proc.Output())
	}
	out := proc.Output()
	if !strings.Contains(out, "inet "+a.IP.String()+"/24") || !strings.Contains(out, PodInterface) {
		t.Fatalf("ip -o addr in pod lacks %s on %s:\n%s", a.IP, PodInterface, out)
	}
	if strings.Contains(out, BridgeName) {
		t.Fatalf("pod sees the bridge:\n%s", out)
	}

	// Command with a user: the proxy's uid.
	cmd := a.CommandWith(ctx, ExecOptions{User: &Credential{UID: 2102, GID: 2102}, Env: []string{"TESTNET_X=42"}},
		"sh", "-c", `echo "$(id -u) $(id -g) $(id -G) $TESTNET_X"; ip -o -4 addr show dev eth0`)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("command as 2102: %v\n%s", err, b)
	}
	lines := strings.SplitN(string(b), "\n", 2)
	if lines[0] != "2102 2102 2102 42" {
		t.Fatalf("uid/gid/groups/env = %q, want %q", lines[0], "2102 2102 2102 42")
	}
	if len(lines) < 2 || !strings.Contains(lines[1], a.IP.String()) {
		t.Fatalf("process as 2102 is not in the pod namespace:\n%s", b)
	}

	// Exec runs as root.
	if got := strings.TrimSpace(a.Exec(t, "id", "-u")); got != "0" {
		t.Fatalf("Exec id -u = %q, want 0", got)
	}
}

func TestProcStopAndWaitOutput(t *testing.T) {
	n := New(t)
	a := n.AddPod("a")
	ctx := testCtx(t)

	t.Run("exits on SIGTERM", func(t *testing.T) {
		p := a.Start(t, ProcSpec{Name: "sleeper", Path: "sh", Args: []string{"-c", "echo ready; exec sleep 60"}})
		if err := p.WaitOutput(ctx, "ready"); err != nil {
			t.Fatal(err)
		}
		// nil means it exited by SIGTERM, without Stop's SIGKILL.
		if err := p.Stop(); err != nil {
			t.Fatalf("Stop() = %v, want nil for an exit by SIGTERM", err)
		}
		select {
		case <-p.Done():
		default:
			t.Fatal("Done not closed after Stop")
		}
	})

	t.Run("killed after grace period", func(t *testing.T) {
		p := a.Start(t, ProcSpec{
			Name:        "stubborn",
			Path:        "sh",
			Args:        []string{"-c", `trap "" TERM; echo ready; sleep 60 & wait; sleep 60`},
			GracePeriod: 300 * time.Millisecond,
		})
		if err := p.WaitOutput(ctx, "ready"); err != nil {
			t.Fatal(err)
		}
		err := p.Stop()
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("Stop() = %v, want a 'killed' error", err)
		}
		if err := syscall.Kill(p.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("process %d still exists after Stop: %v", p.Pid(), err)
		}
	})

	t.Run("failed exit is reported", func(t *testing.T) {
		p := a.Start(t, ProcSpec{Path: "sh", Args: []string{"-c", "echo oops >&2; exit 3"}})
		if err := p.WaitOutput(ctx, "never printed"); err == nil {
			t.Fatal("WaitOutput succeeded for text the process never printed")
		}
		var ee *exec.ExitError
		if err := p.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("Wait() = %v, want exit status 3", err)
		}
		if err := p.Stop(); err == nil {
			t.Fatal("Stop() = nil for a process that exited with status 3")
		}
		if !strings.Contains(p.Output(), "oops") {
			t.Fatalf("stderr not captured: %q", p.Output())
		}
	})

	t.Run("signal", func(t *testing.T) {
		// As under nohup or a detached CI runner: the test process ignores
		// SIGHUP. The pod's shell must still start with the default
		// disposition, or its trap cannot catch SIGHUP.
		signal.Ignore(syscall.SIGHUP)
		defer signal.Reset(syscall.SIGHUP)
		p := a.Start(t, ProcSpec{Path: "sh", Args: []string{"-c", `trap "echo got-hup; exit 0" HUP; echo ready; while :; do sleep 0.05; done`}})
		if err := p.WaitOutput(ctx, "ready"); err != nil {
			t.Fatal(err)
		}
		if err := p.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitOutput(ctx, "got-hup"); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			t.Fatalf("Wait() = %v, want clean exit", err)
		}
	})
}

// threadsInHostNetNS checks that every thread of this process is in the
// process's main network namespace.
func threadsInHostNetNS(t *testing.T) {
	t.Helper()
	want, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		got, err := os.Readlink(task)
		if err != nil {
			continue // thread exited meanwhile
		}
		if got != want {
			t.Errorf("thread %s is in %s, want %s", task, got, want)
		}
	}
}

func TestConcurrentDials(t *testing.T) {
	n := New(t)
	pods := []*Pod{n.AddPod("a"), n.AddPod("b"), n.AddPod("c")}
	server := n.AddPod("server")
	ctx := testCtx(t)

	ln, err := server.Listen("tcp", ":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hostLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()

	// Echo the peer's address back so each dialer can check its source.
	var serveWG sync.WaitGroup
	serve := func(ln net.Listener) {
		defer serveWG.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serveWG.Add(1)
			go func() {
				defer serveWG.Done()
				defer c.Close()
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				io.WriteString(c, host+"\n")
			}()
		}
	}
	serveWG.Add(2)
	go serve(ln)
	go serve(hostLn)
	defer func() {
		ln.Close()
		hostLn.Close()
		serveWG.Wait()
	}()

	const perWorker = 25
	var wg sync.WaitGroup
	errs := make(chan error, (len(pods)+1)*perWorker)
	for _, p := range pods {
		wg.Go(func() {
			for range perWorker {
				errs <- dialAndCheck(ctx, p.DialContext, server.Addr(7000), p.IP.String())
			}
		})
	}
	// Host-side dials interleaved with pod dials must stay on the host.
	wg.Go(func() {
		var d net.Dialer
		for range perWorker {
			errs <- dialAndCheck(ctx, d.DialContext, hostLn.Addr().String(), "127.0.0.1")
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	threadsInHostNetNS(t)
}

func dialAndCheck(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), addr, wantPeer string) error {
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("read from %s: %w", addr, err)
	}
	if got := strings.TrimSpace(string(b)); got != wantPeer {
		return fmt.Errorf("%s saw peer %q, want %q", addr, got, wantPeer)
	}
	return nil
}

func TestListenPacket(t *testing.T) {
	n := New(t)
	a := n.AddPod("a")
	b := n.AddPod("b")

	pc, err := b.ListenPacket("udp", ":9999")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := a.DialContext(testCtx(t), "udp", b.Addr(9999))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	nr, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:nr]) != "ping" || from.(*net.UDPAddr).IP.String() != a.IP.String() {
		t.Fatalf("got %q from %s, want \"ping\" from %s", buf[:nr], from, a.IP)
	}
}

func TestWaitTCP(t *testing.T) {
	n := New(t)
	a := n.AddPod("a")
	b := n.AddPod("b")

	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := a.WaitTCP(short, b.Addr(8000)); err == nil {
		t.Fatal("WaitTCP succeeded with nothing listening")
	}

	// Start listening a little later; WaitTCP must pick it up.
	p := b.Start(t, ProcSpec{Path: "sh", Args: []string{"-c", "sleep 0.3; echo listening"}})
	ready := make(chan net.Listener, 1)
	go func() {
		<-p.Done()
		ln, err := b.Listen("tcp", ":8000")
		if err != nil {
			close(ready)
			return
		}
		ready <- ln
	}()
	if err := a.WaitTCP(testCtx(t), b.Addr(8000)); err != nil {
		t.Fatal(err)
	}
	if ln, ok := <-ready; ok {
		ln.Close()
	}
}

func TestCleanupRemovesEverything(t *testing.T) {
	var (
		names []string
		pids  []int
		lock  string
	)
	t.Run("inner", func(t *testing.T) {
		n := New(t)
		a := n.AddPod("a")
		b := n.AddPod("b")
		names = []string{n.SwitchNS, a.NetNS, b.NetNS}
		lock = lockPath(n.ID)
		pids = append(pids, a.Start(t, ProcSpec{Path: "sleep", Args: []string{"60"}}).Pid())
		// A process started with Command and never waited for: the network
		// cleanup must kill it too.
		cmd := b.Command(context.Background(), "sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, cmd.Process.Pid)
		go cmd.Wait() // reap it once killed
		for _, name := range names {
			if !netNSExists(name) {
				t.Fatalf("namespace %s missing while the network is live", name)
			}
		}
	})
	left := listNetNS(t)
	for _, name := range names {
		for _, l := range left {
			if l == name {
				t.Errorf("namespace %s survived cleanup", name)
			}
		}
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file %s survived cleanup: %v", lock, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			// The Command process is reaped asynchronously by cmd.Wait.
			time.Sleep(20 * time.Millisecond)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d survived cleanup: %v", pid, err)
		}
	}
}

func TestStaleNamespacesRemoved(t *testing.T) {
	Require(t, "ip", "nsenter")
	id, err := randomID()
	if err != nil {
		t.Fatal(err)
	}
	staleNames := []string{NamePrefix + id + "-" + switchSuffix, NamePrefix + id + "-pod"}
	busyID, err := randomID()
	if err != nil {
		t.Fatal(err)
	}
	busy := NamePrefix + busyID + "-busy"
	t.Cleanup(func() {
		for _, name := range append(staleNames, busy) {
			killNetNSProcesses(name)
			deleteNetNS(name)
		}
	})
	for _, name := range append(staleNames, busy) {
		if out, err := runIP("netns", "add", name); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	// A namespace in use by a process must be left alone.
	sleeper := exec.Command("nsenter", "--net="+nsPath(busy), "sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sleeper.Process.Kill()
		sleeper.Wait()
	}()
	testkit.EventuallyTrue(t, 30*time.Second, "the sleeper to enter namespace "+busy, func() bool {
		pids, _ := netNSPids(busy)
		return len(pids) > 0
	})

	// A live network in this process must be left alone too.
	live := New(t)
	livePod := live.AddPod("a")

	New(t)

	for _, name := range staleNames {
		if netNSExists(name) {
			t.Errorf("stale namespace %s was not removed", name)
		}
	}
	for _, name := range []string{busy, live.SwitchNS, livePod.NetNS} {
		if !netNSExists(name) {
			t.Errorf("namespace %s in use was removed", name)
		}
	}
}

func TestDoRestoresNamespaceAfterPanic(t *testing.T) {
	n := New(t)
	a := n.AddPod("a")
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want the panic from fn", r)
			}
		}()
		a.Do(func() error { panic("boom") })
	}()
	threadsInHostNetNS(t)

	// Errors from fn come back unchanged.
	want := errors.New("from fn")
	if err := a.Do(func() error { return want }); !errors.Is(err, want) {
		t.Fatalf("Do() = %v, want %v", err, want)
	}
	// A namespace that does not exist is an error, not a crash.
	bogus := &Pod{Name: "bogus", NetNS: NamePrefix + "nonexistent-x"}
	if err := bogus.Do(func() error { return nil }); err == nil {
		t.Fatal("Do in a missing namespace succeeded")
	}
}

func TestBuildBinariesRunsTestappInPod(t *testing.T) {
	bins := BuildBinaries(t, "./test/testapp")
	app := bins["testapp"]
	fi, err := os.Stat(app)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o005 != 0o005 {
		t.Fatalf("binary %s mode %v is not executable by other users", app, fi.Mode())
	}
	// Cached: the second call must not rebuild.
	start := time.Now()
	if again := BuildBinaries(t, "./test/testapp")["testapp"]; again != app {
		t.Fatalf("second BuildBinaries returned %s, want %s", again, app)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("second BuildBinaries took %v; expected the cached result", d)
	}

	n := New(t)
	server := n.AddPod("server")
	client := n.AddPod("client")
	// As the proxy will: run as an unprivileged uid.
	server.Start(t, ProcSpec{
		Path: app,
		Args: []string{"--name", "srv", "--http", "8080", "--grpc", "8082", "--tcp", "8083", "--banner", "0"},
		User: &Credential{UID: 2102, GID: 2102},
	})
	ctx := testCtx(t)
	if err := client.WaitTCP(ctx, server.Addr(8080)); err != nil {
		t.Fatal(err)
	}
	c, err := client.DialContext(ctx, "tcp", server.Addr(8083))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET-ish bytes"); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte("GET-ish bytes")) {
		t.Fatalf("tcp echo from testapp in pod = %q", got)
	}

	// HTTP from the client pod.
	hc := &http.Client{Transport: &http.Transport{DialContext: client.DialContext}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + server.Addr(8080) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "testapp srv" {
		t.Fatalf("GET / = %q, %v; want %q", body, err, "testapp srv")
	}

	// gRPC from the client pod, with DialTCP as the dialer.
	if err := client.WaitTCP(ctx, server.Addr(8082)); err != nil {
		t.Fatal(err)
	}
	gc, err := grpc.NewClient("passthrough:///"+server.Addr(8082),
		grpc.WithContextDialer(client.DialTCP),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	hr, err := healthpb.NewHealthClient(gc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v", hr.GetStatus())
	}

	// A package that does not build is reported.
	ft := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		BuildBinaries(ft, "./internal/testnet/does-not-exist")
	}()
	if !ft.fatal {
		t.Fatal("BuildBinaries of a missing package did not fail the test")
	}
}

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	fatal bool
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = true
	panic("fatal: " + fmt.Sprintf(format, args...))
}
