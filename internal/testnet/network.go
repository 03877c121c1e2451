package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// NamePrefix starts the name of every namespace this package creates.
	NamePrefix = "l5dt-"
	// BridgeName is the bridge device inside a network's switch namespace.
	BridgeName = "br0"
	// PodInterface is the name of a pod's interface on the network.
	PodInterface = "eth0"

	netnsDir = "/run/netns"
	// lockDir holds one lock file per live Network, flock(2)ed by its owner
	// and holding the subnet's third octet.
	lockDir = "/run/l5dt-testnet"

	switchSuffix = "switch"
	// firstHost is the host part of the first pod address; .1 is left free.
	firstHost = 2
	lastHost  = 254
	// ipTimeout bounds every ip(8) invocation.
	ipTimeout = 30 * time.Second
)

// subnetBase is the /16 out of which each Network takes a /24.
var subnetBase = [2]byte{10, 248}

// podNameRE restricts pod names to DNS-label-like strings.
var podNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// Network is a set of pods on one layer-2 segment: a switch namespace holding
// a bridge, and one namespace per pod attached to it by a veth pair.
type Network struct {
	// ID is the random part of every namespace name of this network.
	ID string
	// SwitchNS is the name of the namespace holding the bridge.
	SwitchNS string
	// Subnet is the pods' subnet, e.g. 10.248.17.0/24.
	Subnet netip.Prefix

	t    testing.TB
	lock *os.File

	mu     sync.Mutex
	pods   []*Pod
	procs  []*Proc
	nextIx int
	closed bool
}

// New creates a network with a fresh /24 subnet and registers a cleanup that
// stops its processes and deletes its namespaces. It first removes namespaces
// that earlier runs left behind, when no live process owns or uses them. New
// calls [Require] for the tools it needs.
func New(t testing.TB) *Network {
	t.Helper()
	Require(t, "ip", "nsenter")

	removeStale(t)

	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		t.Fatalf("testnet: create lock dir: %v", err)
	}
	var (
		n   *Network
		err error
	)
	// A few attempts in case of an ID or subnet collision with a concurrent
	// test process.
	for attempt := 0; attempt < 5; attempt++ {
		n, err = reserve()
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("testnet: reserve network: %v", err)
	}
	n.t = t
	// Registered before anything is created, so partial setups are removed.
	t.Cleanup(n.close)

	sw := n.SwitchNS
	n.mustIP("netns", "add", sw)
	n.mustIP("-n", sw, "link", "set", "lo", "up")
	n.mustIP("-n", sw, "link", "add", BridgeName, "type", "bridge")
	n.mustIP("-n", sw, "link", "set", BridgeName, "up")
	// If br_netfilter is loaded, keep bridged frames out of the switch
	// namespace's (empty) netfilter tables; absent files are fine.
	err = runInNetNS(nsPath(sw), func() error {
		for _, f := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"} {
			if err := os.WriteFile("/proc/sys/net/bridge/"+f, []byte("0\n"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("disable %s: %w", f, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Logf("testnet: %v", err)
	}
	t.Logf("testnet: network %s on %s (switch namespace %s)", n.ID, n.Subnet, sw)
	return n
}

// reserve picks a fresh ID and subnet and takes the network's lock file.
func reserve() (*Network, error) {
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	used, err := usedSubnets()
	if err != nil {
		return nil, err
	}
	octet, err := pickOctet(used, randIntn)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(lockPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(lockPath(id))
		return nil, fmt.Errorf("lock %s: %w", lockPath(id), err)
	}
	if _, err := fmt.Fprintf(f, "%d\n", octet); err != nil {
		f.Close()
		os.Remove(lockPath(id))
		return nil, fmt.Errorf("write lock file: %w", err)
	}
	prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{subnetBase[0], subnetBase[1], byte(octet), 0}), 24)
	return &Network{
		ID:       id,
		SwitchNS: NamePrefix + id + "-" + switchSuffix,
		Subnet:   prefix,
		lock:     f,
	}, nil
}

func randomID() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func randIntn(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return int(v.Int64())
}

// pickOctet chooses a random third octet in [1, 254] that is not in used.
func pickOctet(used map[int]bool, intn func(int) int) (int, error) {
	var free []int
	for o := 1; o <= 254; o++ {
		if !used[o] {
			free = append(free, o)
		}
	}
	if len(free) == 0 {
		return 0, errors.New("no free subnet left in 10.248.0.0/16")
	}
	return free[intn(len(free))], nil
}

// usedSubnets reads the third octets recorded in existing lock files.
func usedSubnets() (map[int]bool, error) {
	entries, err := os.ReadDir(lockDir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", lockDir, err)
	}
	used := make(map[int]bool)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(lockDir, e.Name()))
		if err != nil {
			continue
		}
		if o, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			used[o] = true
		}
	}
	return used, nil
}

func lockPath(id string) string { return filepath.Join(lockDir, id+".lock") }

func nsPath(name string) string { return filepath.Join(netnsDir, name) }

// AddPod creates a pod namespace named after name, connects its eth0 to the
// bridge, gives it the next address of the subnet and brings lo and eth0 up.
// Pod names are lowercase letters, digits and dashes, unique in the network.
func (n *Network) AddPod(name string) *Pod {
	n.t.Helper()
	if !podNameRE.MatchString(name) || name == switchSuffix {
		n.t.Fatalf("testnet: invalid pod name %q (want [a-z0-9-], at most 40 characters, not %q)", name, switchSuffix)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.t.Fatalf("testnet: AddPod(%q) on a closed network", name)
	}
	for _, p := range n.pods {
		if p.Name == name {
			n.mu.Unlock()
			n.t.Fatalf("testnet: pod %q already exists", name)
		}
	}
	ix := n.nextIx
	ip, ok := hostAddr(n.Subnet, ix)
	if !ok {
		n.mu.Unlock()
		n.t.Fatalf("testnet: subnet %s is full", n.Subnet)
	}
	n.nextIx++
	p := &Pod{
		Name:      name,
		NetNS:     NamePrefix + n.ID + "-" + name,
		IP:        ip,
		Interface: PodInterface,
		HostVeth:  "veth" + strconv.Itoa(ix),
		network:   n,
	}
	// Registered first, so that cleanup removes a half-built pod.
	n.pods = append(n.pods, p)
	n.mu.Unlock()

	cidr := netip.PrefixFrom(ip, n.Subnet.Bits()).String()
	n.mustIP("netns", "add", p.NetNS)
	n.mustIP("-n", n.SwitchNS, "link", "add", p.HostVeth, "type", "veth", "peer", "name", PodInterface, "netns", p.NetNS)
	n.mustIP("-n", n.SwitchNS, "link", "set", p.HostVeth, "master", BridgeName, "up")
	n.mustIP("-n", p.NetNS, "link", "set", "lo", "up")
	n.mustIP("-n", p.NetNS, "addr", "add", cidr, "dev", PodInterface)
	n.mustIP("-n", p.NetNS, "link", "set", PodInterface, "up")
	// The kernel adds the connected route for the /24 with the address;
	// pods need no gateway because everything they reach is on the bridge.
	return p
}

// hostAddr returns the address of the ix-th pod in subnet.
func hostAddr(subnet netip.Prefix, ix int) (netip.Addr, bool) {
	host := firstHost + ix
	if ix < 0 || host > lastHost {
		return netip.Addr{}, false
	}
	b := subnet.Masked().Addr().As4()
	b[3] = byte(host)
	return netip.AddrFrom4(b), true
}

// Pods returns the network's pods in creation order.
func (n *Network) Pods() []*Pod {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Pod(nil), n.pods...)
}

// Pod returns the pod called name, or nil.
func (n *Network) Pod(name string) *Pod {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.pods {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// track registers a process for teardown; it reports false when the network
// is already closed.
func (n *Network) track(p *Proc) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.procs = append(n.procs, p)
	return true
}

// close stops all processes, kills anything else left in the namespaces and
// deletes them. It runs as a t.Cleanup.
func (n *Network) close() {
	n.mu.Lock()
	n.closed = true
	procs := n.procs
	pods := n.pods
	n.mu.Unlock()

	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { _ = p.Stop() })
	}
	wg.Wait()

	names := make([]string, 0, len(pods)+1)
	for _, p := range pods {
		names = append(names, p.NetNS)
	}
	names = append(names, n.SwitchNS)
	for _, name := range names {
		if err := killNetNSProcesses(name); err != nil {
			n.t.Errorf("testnet: %v", err)
		}
	}
	for _, name := range names {
		if err := deleteNetNS(name); err != nil {
			n.t.Errorf("testnet: %v", err)
		}
	}
	if n.lock != nil {
		os.Remove(n.lock.Name())
		n.lock.Close()
	}
}

// mustIP runs ip(8) with args and fails the test on error.
func (n *Network) mustIP(args ...string) {
	n.t.Helper()
	if out, err := runIP(args...); err != nil {
		n.t.Fatalf("testnet: %v\n%s", err, out)
	}
}

// runIP runs ip(8) with args and returns its combined output.
func runIP(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// netNSExists reports whether a named namespace exists.
func netNSExists(name string) bool {
	_, err := os.Lstat(nsPath(name))
	return err == nil
}

// deleteNetNS deletes a named namespace; a missing one is not an error.
func deleteNetNS(name string) error {
	if !netNSExists(name) {
		return nil
	}
	if out, err := runIP("netns", "delete", name); err != nil && netNSExists(name) {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// netNSPids lists the processes whose network namespace is the named one.
func netNSPids(name string) ([]int, error) {
	out, err := runIP("netns", "pids", name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("ip netns pids %s: unexpected output %q", name, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// killNetNSProcesses SIGKILLs every process left in the namespace and waits
// (bounded) until none is left.
func killNetNSProcesses(name string) error {
	if !netNSExists(name) {
		return nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := netNSPids(name)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in namespace %s after SIGKILL", pids, name)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeStale deletes namespaces whose name starts with NamePrefix when the
// Network that made them is gone (its lock file is missing or not locked)
// and no process runs in any of them.
func removeStale(t testing.TB) {
	t.Helper()
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			t.Logf("testnet: list %s: %v", netnsDir, err)
		}
		return
	}
	groups := make(map[string][]string)
	for _, e := range entries {
		if id, ok := networkID(e.Name()); ok {
			groups[id] = append(groups[id], e.Name())
		}
	}
	for id, names := range groups {
		if err := removeStaleNetwork(id, names); err != nil {
			if errors.Is(err, errNetworkInUse) {
				continue // a live Network, the normal case
			}
			t.Logf("testnet: leaving namespaces %v: %v", names, err)
			continue
		}
		t.Logf("testnet: removed stale namespaces %v", names)
	}
	// Lock files whose namespaces are all gone and whose owner is dead.
	locks, _ := filepath.Glob(filepath.Join(lockDir, "*.lock"))
	for _, l := range locks {
		id := strings.TrimSuffix(filepath.Base(l), ".lock")
		if _, ok := groups[id]; ok {
			continue
		}
		f, err := os.OpenFile(l, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.Remove(l)
		}
		f.Close()
	}
}

// networkID extracts the network ID from a namespace name made by this
// package ("l5dt-<id>-<suffix>").
func networkID(ns string) (string, bool) {
	rest, ok := strings.CutPrefix(ns, NamePrefix)
	if !ok {
		return "", false
	}
	id, suffix, ok := strings.Cut(rest, "-")
	if !ok || id == "" || suffix == "" {
		return "", false
	}
	return id, true
}

// errNetworkInUse means a live process holds the network's lock.
var errNetworkInUse = errors.New("its network is in use by a live process")

// removeStaleNetwork deletes the namespaces of network id if it is stale.
func removeStaleNetwork(id string, names []string) error {
	f, err := os.OpenFile(lockPath(id), os.O_RDWR, 0)
	switch {
	case err == nil:
		defer f.Close()
		// Held for the rest of this function, so the ID cannot be reused
		// while its namespaces are deleted.
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return errNetworkInUse
		}
	case errors.Is(err, os.ErrNotExist):
		// A Network takes its lock before creating namespaces, so these were
		// left by a run whose lock file is gone; rely on the process check.
	default:
		return fmt.Errorf("open lock: %w", err)
	}
	for _, name := range names {
		pids, err := netNSPids(name)
		if err != nil {
			return err
		}
		if len(pids) > 0 {
			return fmt.Errorf("processes %v still run in %s", pids, name)
		}
	}
	for _, name := range names {
		if err := deleteNetNS(name); err != nil {
			return err
		}
	}
	if f != nil {
		os.Remove(lockPath(id))
	}
	return nil
}
