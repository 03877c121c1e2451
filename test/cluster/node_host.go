package cluster

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linkerd-go/linkerd/internal/testnet"
)

// The host side of a node: its network namespace, the process holding its
// private mount namespace, its cgroups, and the forwarder that makes its
// API server reachable on the host's loopback.

// netnsDir is where iproute2 keeps named network namespaces.
const netnsDir = "/run/netns"

// nodeIDPrefix starts the node's id, which names its network namespace,
// its dir under os.TempDir, its cgroups and its CNI network:
// l5d-node-<pid>-<n>.
const nodeIDPrefix = "l5d-node-"

// cmdTimeout bounds one helper command (ip, mount, ctr version).
const cmdTimeout = 30 * time.Second

// runCmd runs a short helper command and returns its combined output.
func runCmd(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = nodeEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// nodeEnv is childEnv with the sbin directories on PATH (runc, iptables,
// mount and nsenter live there).
func nodeEnv() []string {
	env := childEnv()
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			dirs := strings.Split(v, ":")
			for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
				if !slices.Contains(dirs, d) {
					dirs = append(dirs, d)
				}
			}
			env[i] = "PATH=" + strings.Join(dirs, ":")
			return env
		}
	}
	return append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

// createNetNS makes the node's namespace: lo, and a veth pair with both
// ends inside carrying the node IP. The default route points into the
// pair, so nothing sent in the namespace can leave it.
func createNetNS(ctx context.Context, name string) error {
	steps := [][]string{
		{"netns", "add", name},
		{"-n", name, "link", "set", "lo", "up"},
		{"-n", name, "link", "add", "node0", "type", "veth", "peer", "name", "node0-peer"},
		{"-n", name, "addr", "add", NodeIP + "/24", "dev", "node0"},
		{"-n", name, "link", "set", "node0", "up"},
		{"-n", name, "link", "set", "node0-peer", "up"},
		{"-n", name, "route", "add", "default", "dev", "node0"},
	}
	for _, s := range steps {
		if _, err := runCmd(ctx, "ip", s...); err != nil {
			return fmt.Errorf("network namespace: %w", err)
		}
	}
	return nil
}

// deleteNetNS kills whatever still runs in the namespace and deletes it.
func deleteNetNS(name string) error {
	if _, err := os.Lstat(filepath.Join(netnsDir, name)); err != nil {
		return nil
	}
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := runCmd(ctx, "ip", "netns", "pids", name)
		if err != nil {
			return err
		}
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in network namespace %s after SIGKILL", pids, name)
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := runCmd(ctx, "ip", "netns", "delete", name); err != nil {
		return err
	}
	return nil
}

// dialInNetNS connects to addr (a literal ip:port) from inside the
// network namespace at nsPath.
func dialInNetNS(ctx context.Context, nsPath, addr string) (net.Conn, error) {
	var conn net.Conn
	// No Happy Eyeballs: racing dials would run on other goroutines, outside
	// the namespace. A literal address is dialled on the calling goroutine.
	d := net.Dialer{FallbackDelay: -1, Timeout: 10 * time.Second}
	err := testnet.RunInNetNS(nsPath, func() error {
		c, err := d.DialContext(ctx, "tcp", addr)
		conn = c
		return err
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// forwarder accepts connections on the host's 127.0.0.1 and relays each to
// a connection made by dial (inside the node's namespace).
type forwarder struct {
	ln   net.Listener
	dial func(context.Context) (net.Conn, error)
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newForwarder(dial func(context.Context) (net.Conn, error)) (*forwarder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("forwarder: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	f := &forwarder{ln: ln, dial: dial, ctx: ctx, stop: stop, conns: map[net.Conn]struct{}{}}
	f.wg.Go(f.serve)
	return f, nil
}

// addr is the host address the forwarder listens on.
func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		f.wg.Go(func() { f.relay(c) })
	}
}

// track records c, or reports false (and closes c) once the forwarder is
// closing.
func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		c.Close()
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
	c.Close()
}

func (f *forwarder) relay(down net.Conn) {
	if !f.track(down) {
		return
	}
	defer f.untrack(down)
	up, err := f.dial(f.ctx)
	if err != nil {
		return
	}
	if !f.track(up) {
		return
	}
	defer f.untrack(up)
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	wg.Go(func() { pipe(up, down) })
	pipe(down, up)
	wg.Wait()
}

// close stops accepting, cuts every relayed connection and waits for the
// relays to end.
func (f *forwarder) close() {
	f.ln.Close()
	f.stop()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}

// cgroupMounts returns the mount points of the cgroup hierarchies (one per
// v1 hierarchy, or the v2 root).
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fstype := strings.Fields(post)
		fields := strings.Fields(pre)
		if len(fstype) == 0 || len(fields) < 5 {
			continue
		}
		if fstype[0] == "cgroup" || fstype[0] == "cgroup2" {
			mounts = append(mounts, fields[4])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(mounts) == 0 {
		return nil, errors.New("no cgroup hierarchy mounted")
	}
	return mounts, nil
}

// createCgroups makes the cgroup the node's pods live under (kubelet's
// cgroupRoot) in every hierarchy. A new v1 cpuset cgroup starts with no
// CPUs and memory nodes: it gets its parent's.
func createCgroups(name string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	for _, m := range mounts {
		d := filepath.Join(m, name)
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cgroups: %w", err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			b, err := os.ReadFile(filepath.Join(m, f))
			if err != nil {
				continue // not the v1 cpuset hierarchy
			}
			if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
				return fmt.Errorf("cgroups: %s: %w", f, err)
			}
		}
	}
	return nil
}

// removeCgroups removes the node's cgroups, deepest first, waiting
// (bounded) for killed processes to leave them.
func removeCgroups(name string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var left []string
	deadline := time.Now().Add(10 * time.Second)
	for _, m := range mounts {
		root := filepath.Join(m, name)
		for {
			left = left[:0]
			var dirs []string
			_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				killCgroupProcs(dirs[i])
				if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
					left = append(left, dirs[i])
				}
			}
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(left) > 0 {
			return fmt.Errorf("cgroups left behind: %s", strings.Join(left, ", "))
		}
	}
	return nil
}

// killCgroupProcs SIGKILLs the processes in one cgroup.
func killCgroupProcs(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// killCgroupTree SIGKILLs every process in the node's cgroups (the pods'
// containers).
func killCgroupTree(name string) {
	mounts, err := cgroupMounts()
	if err != nil {
		return
	}
	for _, m := range mounts {
		_ = filepath.WalkDir(filepath.Join(m, name), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				killCgroupProcs(p)
			}
			return nil
		})
	}
}

// cniCacheDir is where libcni caches results, outside any configuration.
const cniCacheDir = "/var/lib/cni/results"

// containerLogLinks is where the kubelet links container logs, whatever
// podLogsDir says.
const containerLogLinks = "/var/log/containers"

// criSandboxes and criContainers hold a directory per pod sandbox and per
// container, named by its id, under a node's dir (containerd's root).
const (
	criSandboxes  = "containerd/root/io.containerd.grpc.v1.cri/sandboxes"
	criContainers = "containerd/root/io.containerd.grpc.v1.cri/containers"
)

// shimSocketDir is where containerd 1.6's shims listen, whatever the
// configuration says: /run/containerd/s/<sha256(address/namespace/id)>.
const shimSocketDir = "/run/containerd/s"

// hostDirs are the machine's directories a node's components create
// outside its dir (paths they hard-code), children before parents.
var hostDirs = []string{
	"/var/lib/kubelet/device-plugins", "/var/lib/kubelet",
	"/run/containerd/s", "/run/containerd",
	containerLogLinks,
	cniCacheDir, "/var/lib/cni",
}

// kubeletDeviceSocket is the socket the kubelet leaves in its
// device-plugins dir.
const kubeletDeviceSocket = "/var/lib/kubelet/device-plugins/kubelet.sock"

// hostDirsFile, in a node's dir, lists the hostDirs that did not exist
// when it started.
const hostDirsFile = "host-dirs"

// recordHostDirs notes which hostDirs are missing before a node starts.
func recordHostDirs(dir string) error {
	var missing []string
	for _, d := range hostDirs {
		if _, err := os.Lstat(d); errors.Is(err, os.ErrNotExist) {
			missing = append(missing, d)
		}
	}
	return os.WriteFile(filepath.Join(dir, hostDirsFile), []byte(strings.Join(missing, "\n")), 0o644)
}

// removeHostLeftovers deletes what a node left on the machine outside its
// dir: libcni's cached results for its pods, the kubelet's links to its
// container logs, and, when no other node runs, the directories its
// components created there (only if empty).
func removeHostLeftovers(id, dir string) {
	sandboxes, _ := os.ReadDir(filepath.Join(dir, criSandboxes))
	containers, _ := os.ReadDir(filepath.Join(dir, criContainers))
	for _, sb := range sandboxes {
		m, _ := filepath.Glob(filepath.Join(cniCacheDir, "*-"+sb.Name()+"-*"))
		for _, f := range m {
			_ = os.Remove(f)
		}
	}
	// Shims killed before containerd could stop them leave their sockets.
	address := filepath.Join(dir, containerdSocket)
	for _, e := range append(sandboxes, containers...) {
		sum := sha256.Sum256([]byte(filepath.Join(address, containerdNamespace, e.Name())))
		_ = os.Remove(filepath.Join(shimSocketDir, hex.EncodeToString(sum[:])))
	}
	if entries, err := os.ReadDir(containerLogLinks); err == nil {
		for _, e := range entries {
			p := filepath.Join(containerLogLinks, e.Name())
			if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, dir+"/") {
				_ = os.Remove(p)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, hostDirsFile))
	if err != nil || otherNodeAlive(id) {
		return
	}
	created := strings.Fields(string(b))
	for _, d := range hostDirs {
		if !slices.Contains(created, d) {
			continue
		}
		if d == filepath.Dir(kubeletDeviceSocket) {
			_ = os.Remove(kubeletDeviceSocket)
		}
		_ = syscall.Rmdir(d) // fails, harmlessly, when not empty
	}
}

// otherNodeAlive reports whether a node other than id runs on the machine.
func otherNodeAlive(id string) bool {
	m, _ := filepath.Glob(filepath.Join(netnsDir, nodeIDPrefix+"*"))
	for _, p := range m {
		other := filepath.Base(p)
		if pid, ok := nodeOwner(other); ok && other != id && alive(pid) {
			return true
		}
	}
	return false
}

// nodeOwner parses the pid out of a node id.
func nodeOwner(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, nodeIDPrefix)
	if !ok {
		return 0, false
	}
	pidStr, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidStr)
	return pid, err == nil && pid > 0
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// sweepStaleNodes removes what nodes of dead test binaries left: their
// processes (containerd shims and containers outlive their parent),
// network namespaces, cgroups and dirs.
func sweepStaleNodes() {
	ids := map[string]bool{}
	for _, pattern := range []string{filepath.Join(netnsDir, nodeIDPrefix+"*"), filepath.Join(os.TempDir(), nodeIDPrefix+"*")} {
		m, _ := filepath.Glob(pattern)
		for _, p := range m {
			ids[filepath.Base(p)] = true
		}
	}
	if mounts, err := cgroupMounts(); err == nil {
		for _, m := range mounts {
			found, _ := filepath.Glob(filepath.Join(m, nodeIDPrefix+"*"))
			for _, p := range found {
				ids[filepath.Base(p)] = true
			}
		}
	}
	for id := range ids {
		pid, ok := nodeOwner(id)
		if !ok || alive(pid) {
			continue
		}
		killCgroupTree(id)
		_ = deleteNetNS(id)
		_ = removeCgroups(id)
		dir := filepath.Join(os.TempDir(), id)
		removeHostLeftovers(id, dir)
		_ = os.RemoveAll(dir)
	}
}
