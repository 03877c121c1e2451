package cluster

// A single-node Kubernetes cluster for tests that need real pods.
//
// Layout. Everything runs inside one network namespace, /run/netns/<id>
// (id = l5d-node-<test binary pid>-<n>), whose only interfaces are lo and a
// veth pair with both ends inside: node0 carries the node IP 10.200.0.1/24
// and the default route points into the pair, so nothing sent inside can
// leave. A holder process (`unshare --mount --propagation slave sleep
// infinity`, entered into the namespace with nsenter) owns a private mount
// namespace in which the kubelet's sysctl demands are met by bind-mounting
// files over /proc/sys (the machine's own values stay untouched), and in
// which the kubelet's and containerd's mounts stay. Every component is
// started with `nsenter --target <holder> --mount --net` and is a child of
// the test binary (SIGKILLed if it dies):
//
//	etcd                     127.0.0.1:2379 (in the namespace)
//	kube-apiserver           10.200.0.1:6443; Services 10.96.0.0/16
//	kube-controller-manager  (ServiceAccounts, Deployments, EndpointSlices, GC)
//	kube-scheduler
//	kube-proxy               iptables mode, rules in the namespace only
//	containerd + runc        Debian's; state, runc root and CNI IPAM under the dir
//	kubelet                  node "l5d-node", cgroupfs, pods under cgroup /<id>
//	bridge CNI               cni0 = 10.244.0.1, pods in 10.244.0.0/24
//	CoreDNS                  a Deployment in kube-system behind kube-dns at 10.96.0.10
//
// Images are docker-archive tarballs (internal/images) imported with
// `ctr -n k8s.io images import`; nothing is ever pulled. The test binary
// reaches the API server through a forwarder on the host's 127.0.0.1 that
// dials into the namespace, so Kubeconfig works for client-go, kubectl and
// the linkerd CLI run on the host; Command runs a program inside the
// namespace (e.g. to reach a pod or cluster IP). Data, PKI, configuration
// and one log per component (LogDir) live in os.TempDir()/<id>.
//
// Stop kills the components by PID, then every container (by the node's
// cgroups) and what is left in the namespace (containerd shims), deletes
// the namespace and the cgroups and removes the dir. What a killed test
// binary leaves behind is swept by the next node's start.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/linkerd-go/linkerd/internal/images"
	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/internal/testnet"
)

// The node's fixed addresses and names; every node has the same ones, each
// in its own network namespace.
const (
	NodeName            = "l5d-node"
	NodeIP              = "10.200.0.1"
	PodCIDR             = "10.244.0.0/24"
	ClusterCIDR         = "10.244.0.0/16"
	KubernetesServiceIP = "10.96.0.1"  // the "kubernetes" Service, in ServiceCIDR
	ClusterDNSIP        = "10.96.0.10" // kube-system/kube-dns
	ClusterDomain       = "cluster.local"
)

const (
	nodeAPIPort = 6443
	kubeletPort = 10250
)

// nodeBinaries are the binaries a node needs from BinDir.
var nodeBinaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet", "coredns", "prometheus"}

// nodeTools are the programs a node needs on PATH.
var nodeTools = []string{"ip", "nsenter", "unshare", "mount", "sleep", "containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "iptables-save", "iptables-restore", "go"}

// cniPlugins are the CNI plugins the node's network uses.
var cniPlugins = []string{"bridge", "host-local", "loopback"}

// CNIBinDir is where the CNI plugins are: Debian's containernetworking-plugins
// puts them in /usr/lib/cni, upstream releases in /opt/cni/bin.
var CNIBinDir = func() string {
	for _, d := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			return d
		}
	}
	return "/usr/lib/cni"
}()

// NodeOptions configures a node.
type NodeOptions struct {
	// ImageTag, when set, builds the project's images (internal/images:
	// proxy, controller, testapp, demo, prometheus) with this tag and loads
	// them.
	ImageTag string
	// Images are more docker-archive tarballs to load.
	Images []string
	// Logf, if set, reports progress.
	Logf func(format string, args ...any)
}

// projectImages are the images NodeOptions.ImageTag builds.
var projectImages = []string{images.Proxy, images.Controller, images.TestApp, images.Demo, images.Prometheus}

// ImageDir is where nodes keep the image tarballs they build, one
// subdirectory per tag ("_node" for pause and CoreDNS); unchanged images
// are not rewritten.
func ImageDir() string { return filepath.Join(os.TempDir(), "l5d-images") }

// Node is a running single-node cluster. Its fields are read-only.
type Node struct {
	// Kubeconfig is an admin kubeconfig (system:masters) for the host:
	// its server is Server.
	Kubeconfig string
	// Server is the API server's URL on the host, https://127.0.0.1:PORT,
	// relayed into the node's namespace.
	Server string
	// InnerKubeconfig is the same admin kubeconfig with the server the
	// API server's address inside the namespace, for programs run with
	// Command.
	InnerKubeconfig string
	// RESTConfig is the admin's client configuration (host side). Copy it
	// (rest.CopyConfig) before changing it.
	RESTConfig *rest.Config
	// Client is a clientset for the admin.
	Client kubernetes.Interface
	// NetNS names the node's network namespace (/run/netns/NetNS).
	NetNS string
	// Dir holds the node's data, configuration and logs; removed by Stop.
	Dir string
	// LogDir holds one log file per component: etcd.log,
	// kube-apiserver.log, containerd.log, kubelet.log, ...
	LogDir string
	// StartupTime is how long NewNode took, images included.
	StartupTime time.Duration

	id     string
	files  *nodeFiles
	holder *process
	fwd    *forwarder
	logs   []*os.File

	mu    sync.Mutex
	procs []*process // components, in start order

	imageMu sync.Mutex
	loaded  map[string]string // image tarball path@mtime -> ctr's output
	logf    func(string, ...any)

	stopOnce sync.Once
	stopErr  error
}

var nodeSeq atomic.Int64

// NewNode starts a node; Stop it when done. StartNode is the shared,
// test-scoped variant.
func NewNode(ctx context.Context, opts NodeOptions) (n *Node, err error) {
	begin := time.Now()
	sweepStaleNodes()
	id := fmt.Sprintf("%s%d-%d", nodeIDPrefix, os.Getpid(), nodeSeq.Add(1))
	dir := filepath.Join(os.TempDir(), id)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("node dir: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("node dir: %w", err)
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	n = &Node{
		NetNS:  id,
		Dir:    dir,
		id:     id,
		files:  newNodeFiles(dir),
		loaded: map[string]string{},
		logf:   logf,
	}
	n.LogDir = n.files.logDir
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w%s", err, n.logTails(nil, 4<<10))
			_ = n.Stop()
			n = nil
		}
	}()
	if err := recordHostDirs(dir); err != nil {
		return n, fmt.Errorf("node dir: %w", err)
	}

	// Images build (go build) while the control plane starts, and load
	// as soon as containerd is up.
	type built struct {
		paths []string
		err   error
	}
	bgCtx, cancelBg := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer func() {
		cancelBg()
		bg.Wait()
	}()
	builtc := make(chan built, 1)
	bg.Go(func() {
		paths, err := buildNodeImages(bgCtx, opts.ImageTag)
		builtc <- built{paths, err}
	})

	phase := func(what string) {
		logf("node %s: %s at %v", id, what, time.Since(begin).Round(time.Millisecond))
	}
	if err := createNetNS(ctx, id); err != nil {
		return n, err
	}
	if err := createCgroups(id); err != nil {
		return n, err
	}
	pki, err := writeNodePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return n, err
	}
	if err := n.files.writeConfigs(nodeParams(dir, n.files, pki, id), pki); err != nil {
		return n, err
	}
	if err := n.startHolder(ctx); err != nil {
		return n, err
	}
	if err := n.startControlPlane(pki); err != nil {
		return n, err
	}
	loadc := make(chan error, 1)
	bg.Go(func() {
		loadc <- func() error {
			if err := n.waitContainerd(bgCtx); err != nil {
				return err
			}
			b := <-builtc
			if b.err != nil {
				return b.err
			}
			if err := n.LoadImages(bgCtx, append(b.paths, opts.Images...)...); err != nil {
				return err
			}
			phase("images built and loaded")
			return nil
		}()
	})
	if err := n.connect(pki); err != nil {
		return n, err
	}
	if err := n.waitAPIServer(ctx); err != nil {
		return n, err
	}
	phase("etcd and kube-apiserver ready")
	if err := <-loadc; err != nil {
		return n, err
	}
	if err := n.startNodeComponents(pki); err != nil {
		return n, err
	}
	if err := n.waitNodeReady(ctx); err != nil {
		return n, err
	}
	phase("node Ready")
	if err := n.deployDNS(ctx); err != nil {
		return n, err
	}
	phase("cluster DNS ready")
	n.StartupTime = time.Since(begin)
	return n, nil
}

// buildNodeImages builds pause and CoreDNS, and the project's images when
// tag is set, and returns their tarballs.
func buildNodeImages(ctx context.Context, tag string) ([]string, error) {
	sets := []images.Options{{
		OutDir:        filepath.Join(ImageDir(), "_node"),
		Names:         []string{images.Pause, images.CoreDNS},
		CoreDNSBinary: filepath.Join(BinDir(), "coredns"),
	}}
	if tag != "" {
		sets = append(sets, images.Options{Tag: tag, OutDir: filepath.Join(ImageDir(), tag), Names: projectImages,
			PrometheusBinary: filepath.Join(BinDir(), "prometheus")})
	}
	var paths []string
	for _, o := range sets {
		built, err := images.Build(ctx, o)
		if err != nil {
			return nil, err
		}
		for _, img := range built {
			paths = append(paths, img.Path)
		}
	}
	return paths, nil
}

// nsenterArgs are the arguments that run a program in the node's network
// and mount namespaces.
func (n *Node) nsenterArgs(net bool) []string {
	args := []string{"--target", strconv.Itoa(n.holder.cmd.Process.Pid), "--mount"}
	if net {
		args = append(args, "--net")
	}
	return append(args, "--")
}

// startHolder starts the process that owns the node's private mount
// namespace, and sets up the fake sysctls in it.
func (n *Node) startHolder(ctx context.Context) error {
	log, err := n.logFile("holder")
	if err != nil {
		return err
	}
	n.holder, err = startProcessEnv("holder", "nsenter", []string{
		"--net=" + filepath.Join(netnsDir, n.id), "--",
		"unshare", "--mount", "--propagation", "slave", "--",
		"sleep", "infinity",
	}, log, nodeEnv())
	if err != nil {
		return err
	}
	// Wait until nsenter and unshare have exec'd into sleep: only then is
	// the holder in its own mount namespace.
	comm := fmt.Sprintf("/proc/%d/comm", n.holder.cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(comm); err == nil && strings.TrimSpace(string(b)) == "sleep" {
			break
		}
		if done, err := n.holder.exited(); done {
			return fmt.Errorf("namespace holder exited: %v", err)
		}
		if time.Now().After(deadline) {
			return errors.New("namespace holder did not start in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The kubelet insists on these VM-wide sysctls; show it files with the
	// values it wants instead of changing the machine.
	for _, s := range []struct{ path, value string }{
		{"/proc/sys/vm/overcommit_memory", "1"},
		{"/proc/sys/kernel/panic", "10"},
		{"/proc/sys/kernel/panic_on_oops", "1"},
	} {
		fake := filepath.Join(n.Dir, "sysctl-"+strings.ReplaceAll(strings.TrimPrefix(s.path, "/proc/sys/"), "/", "."))
		if err := os.WriteFile(fake, []byte(s.value+"\n"), 0o644); err != nil {
			return err
		}
		if _, err := runCmd(ctx, "nsenter", append(n.nsenterArgs(false), "mount", "--bind", fake, s.path)...); err != nil {
			return fmt.Errorf("fake sysctl: %w", err)
		}
	}
	// Bridged pod traffic must go through iptables for Services to work;
	// per network namespace since Linux 5.3.
	return testnet.RunInNetNS(filepath.Join(netnsDir, n.id), func() error {
		if err := os.WriteFile("/proc/sys/net/bridge/bridge-nf-call-iptables", []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("bridge-nf-call-iptables (is br_netfilter loaded?): %w", err)
		}
		return nil
	})
}

func (n *Node) logFile(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(n.LogDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	n.logs = append(n.logs, f)
	return f, nil
}

// start runs a component inside the node's namespaces.
func (n *Node) start(name, bin string, args ...string) error {
	log, err := n.logFile(name)
	if err != nil {
		return err
	}
	p, err := startProcessEnv(name, "nsenter", append(append(n.nsenterArgs(true), bin), args...), log, nodeEnv())
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.procs = append(n.procs, p)
	n.mu.Unlock()
	return nil
}

func (n *Node) startControlPlane(pki *nodePKI) error {
	bin := BinDir()
	dir := n.Dir
	if err := n.start("etcd", filepath.Join(bin, "etcd"),
		"--name=node",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379",
		"--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380",
		"--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=node=http://127.0.0.1:2380",
		"--listen-metrics-urls=http://127.0.0.1:2381",
		"--unsafe-no-fsync",
		"--log-level=warn",
	); err != nil {
		return err
	}
	if err := n.start("containerd", "containerd", "--config", n.files.containerdConf); err != nil {
		return err
	}
	return n.start("kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address=0.0.0.0",
		"--advertise-address="+NodeIP,
		"--secure-port="+strconv.Itoa(nodeAPIPort),
		"--tls-cert-file="+pki.ServingCert,
		"--tls-private-key-file="+pki.ServingKey,
		"--client-ca-file="+pki.CACert,
		"--kubelet-client-certificate="+pki.KubeletClientCert,
		"--kubelet-client-key="+pki.KubeletClientKey,
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer="+Issuer,
		"--api-audiences="+Issuer,
		"--service-account-key-file="+pki.SAPublicKey,
		"--service-account-signing-key-file="+pki.SAKey,
		"--service-cluster-ip-range="+ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
		"--profiling=false",
	)
}

// connect starts the host-side forwarder and writes the kubeconfigs.
func (n *Node) connect(pki *nodePKI) error {
	nsPath := filepath.Join(netnsDir, n.id)
	apiAddr := net.JoinHostPort(NodeIP, strconv.Itoa(nodeAPIPort))
	fwd, err := newForwarder(func(ctx context.Context) (net.Conn, error) {
		return dialInNetNS(ctx, nsPath, apiAddr)
	})
	if err != nil {
		return err
	}
	n.fwd = fwd
	n.Server = "https://" + fwd.addr()
	admin := pki.clients[userAdmin]
	n.Kubeconfig = filepath.Join(n.Dir, "kubeconfig")
	if err := writeClientKubeconfig(n.Kubeconfig, n.Server, pki.CAPEM, admin); err != nil {
		return err
	}
	n.InnerKubeconfig = n.files.kubeconfigs[userAdmin]
	n.RESTConfig, n.Client, err = adminClient(n.Server, pki.CAPEM, admin.certPEM, admin.keyPEM, "l5d-test-node")
	return err
}

// poll calls check every interval until it succeeds, a component exits, or
// timeout passes.
func (n *Node) poll(ctx context.Context, what string, timeout, interval time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		n.mu.Lock()
		procs := slices.Clone(n.procs)
		n.mu.Unlock()
		for _, p := range procs {
			if done, err := p.exited(); done {
				return fmt.Errorf("waiting for %s: %s exited (%v)", what, p.name, err)
			}
		}
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: not done after %v (last error: %v)", what, timeout, last)
		case <-time.After(interval):
		}
	}
}

func (n *Node) waitAPIServer(ctx context.Context) error {
	rc := n.Client.Discovery().RESTClient()
	return n.poll(ctx, "kube-apiserver", 2*time.Minute, 100*time.Millisecond, func(ctx context.Context) error {
		_, err := rc.Get().AbsPath("/readyz").Timeout(5 * time.Second).DoRaw(ctx)
		return err
	})
}

func (n *Node) ctrArgs(args ...string) []string {
	return append([]string{"--address", n.files.containerdSock, "--namespace", containerdNamespace}, args...)
}

func (n *Node) waitContainerd(ctx context.Context) error {
	return n.poll(ctx, "containerd", time.Minute, 100*time.Millisecond, func(ctx context.Context) error {
		_, err := runCmd(ctx, "ctr", n.ctrArgs("version")...)
		return err
	})
}

// LoadImages imports docker-archive image tarballs into the node's
// containerd, where the kubelet finds them (imagePullPolicy IfNotPresent or
// Never; a tag other than "latest" defaults to IfNotPresent). Tarballs
// already loaded are skipped.
func (n *Node) LoadImages(ctx context.Context, paths ...string) error {
	n.imageMu.Lock()
	defer n.imageMu.Unlock()
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return fmt.Errorf("image tarball: %w", err)
		}
		key := abs + "@" + fi.ModTime().String()
		if _, ok := n.loaded[key]; ok {
			continue
		}
		begin := time.Now()
		out, err := runCmd(ctx, "ctr", n.ctrArgs("images", "import", abs)...)
		if err != nil {
			return fmt.Errorf("loading image %s: %w", abs, err)
		}
		n.loaded[key] = strings.TrimSpace(string(out))
		if n.logf != nil {
			n.logf("node %s: loaded %s in %v", n.id, abs, time.Since(begin).Round(time.Millisecond))
		}
	}
	return nil
}

func (n *Node) startNodeComponents(pki *nodePKI) error {
	bin := BinDir()
	kc := n.files.kubeconfigs
	if err := n.start("kube-controller-manager", filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig="+kc[userControllerManager],
		"--authentication-kubeconfig="+kc[userControllerManager],
		"--authorization-kubeconfig="+kc[userControllerManager],
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+pki.SAKey,
		"--root-ca-file="+pki.CACert,
		"--cluster-signing-cert-file="+pki.CACert,
		"--cluster-signing-key-file="+pki.CAKey,
		"--service-cluster-ip-range="+ServiceCIDR,
		"--cluster-cidr="+ClusterCIDR,
		"--allocate-node-cidrs=false",
		"--profiling=false",
	); err != nil {
		return err
	}
	if err := n.start("kube-scheduler", filepath.Join(bin, "kube-scheduler"),
		"--kubeconfig="+kc[userScheduler],
		"--authentication-kubeconfig="+kc[userScheduler],
		"--authorization-kubeconfig="+kc[userScheduler],
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
		"--profiling=false",
	); err != nil {
		return err
	}
	// Conntrack table sizing is VM-wide: leave it alone.
	if err := n.start("kube-proxy", filepath.Join(bin, "kube-proxy"),
		"--kubeconfig="+kc[userKubeProxy],
		"--hostname-override="+NodeName,
		"--proxy-mode=iptables",
		"--cluster-cidr="+ClusterCIDR,
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0",
		"--conntrack-tcp-timeout-close-wait=0",
		"--metrics-bind-address=127.0.0.1:10249",
		"--healthz-bind-address=127.0.0.1:10256",
	); err != nil {
		return err
	}
	return n.start("kubelet", filepath.Join(bin, "kubelet"),
		"--config="+n.files.kubeletConf,
		"--kubeconfig="+kc[userKubelet],
		"--root-dir="+filepath.Join(n.Dir, "kubelet"),
		"--cert-dir="+filepath.Join(n.Dir, "kubelet-certs"),
		"--node-ip="+NodeIP,
		"--hostname-override="+NodeName,
		"-v=1",
	)
}

func (n *Node) waitNodeReady(ctx context.Context) error {
	if err := n.poll(ctx, "node "+NodeName+" Ready", 2*time.Minute, 200*time.Millisecond, func(ctx context.Context) error {
		node, err := n.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("condition Ready is %s: %s", c.Status, c.Message)
			}
		}
		return errors.New("no Ready condition yet")
	}); err != nil {
		return err
	}
	// Pods cannot be created before the controller manager has made the
	// namespace's default ServiceAccount.
	return n.waitDefaultServiceAccount(ctx, metav1.NamespaceDefault)
}

func (n *Node) waitDefaultServiceAccount(ctx context.Context, ns string) error {
	return n.poll(ctx, "ServiceAccount "+ns+"/default", time.Minute, 100*time.Millisecond, func(ctx context.Context) error {
		_, err := n.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// Command returns a command that runs name inside the node's network and
// mount namespaces, where pod and Service IPs are reachable and the API
// server is at InnerKubeconfig's address.
func (n *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append(append(n.nsenterArgs(true), name), args...)...)
	cmd.Env = nodeEnv()
	return cmd
}

// DialContext connects from inside the node's network namespace, like a
// process on the node (hostNetwork): pod IPs, Service cluster IPs (through
// kube-proxy's rules) and the node's own ports are reachable. addr must be
// a literal ip:port; network is "tcp", "tcp4" or "tcp6". It has the
// signature of net.Dialer.DialContext, for http.Transport.DialContext.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("node %s: dial %s %s: only tcp", n.id, network, addr)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("node %s: dial %s: %w", n.id, addr, err)
	}
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("node %s: dial %s: not a literal IP address (names resolve only inside pods)", n.id, addr)
	}
	conn, err := dialInNetNS(ctx, filepath.Join(netnsDir, n.id), addr)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.id, err)
	}
	return conn, nil
}

// Namespace creates a namespace with a fresh name derived from the test's
// name, waits for its default ServiceAccount and deletes it when the test
// ends.
func (n *Node) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := createNamespace(ctx, t, n.Client)
	if err := n.waitDefaultServiceAccount(ctx, ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

// logSizes returns the current size of every component log.
func (n *Node) logSizes() map[string]int64 {
	sizes := map[string]int64{}
	entries, _ := os.ReadDir(n.LogDir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			sizes[e.Name()] = fi.Size()
		}
	}
	return sizes
}

// logTails returns, for every component log, at most limit bytes of what
// was written after marks (nil: from the start), formatted for a test log.
func (n *Node) logTails(marks map[string]int64, limit int64) string {
	var b strings.Builder
	entries, _ := os.ReadDir(n.LogDir)
	for _, e := range entries {
		f, err := os.Open(filepath.Join(n.LogDir, e.Name()))
		if err != nil {
			continue
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			continue
		}
		from := marks[e.Name()]
		note := ""
		if fi.Size()-from > limit {
			from, note = fi.Size()-limit, " (newest lines)"
		}
		buf := make([]byte, fi.Size()-from)
		_, err = f.ReadAt(buf, from)
		f.Close()
		if err != nil || len(buf) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n--- %s%s:\n%s", e.Name(), note, buf)
	}
	return b.String()
}

// Stop stops the node and removes everything it made: processes (by PID,
// then the containers by cgroup and whatever is left in the namespace),
// the network namespace, the cgroups and the dir. Safe to call twice.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() { n.stopErr = n.stop() })
	return n.stopErr
}

func (n *Node) stop() error {
	var errs []error
	if n.fwd != nil {
		n.fwd.close()
	}
	n.mu.Lock()
	procs := slices.Clone(n.procs)
	n.mu.Unlock()
	stopProc := func(name string, grace time.Duration) {
		for _, p := range procs {
			if p.name == name {
				if err := p.stop(grace); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	// No new pods, then no kubelet to restart containers; then the
	// containers themselves, then the rest.
	stopProc("kube-controller-manager", 5*time.Second)
	stopProc("kube-scheduler", 5*time.Second)
	stopProc("kubelet", 5*time.Second)
	killCgroupTree(n.id)
	for _, name := range []string{"kube-proxy", "kube-apiserver", "etcd", "containerd"} {
		stopProc(name, 5*time.Second)
	}
	if n.holder != nil {
		if err := n.holder.stop(time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	// containerd's shims outlive containerd: they are in the namespace.
	if err := deleteNetNS(n.id); err != nil {
		errs = append(errs, fmt.Errorf("network namespace: %w", err))
	}
	if err := removeCgroups(n.id); err != nil {
		errs = append(errs, err)
	}
	removeHostLeftovers(n.id, n.Dir)
	for _, f := range n.logs {
		f.Close()
	}
	if err := os.RemoveAll(n.Dir); err != nil {
		errs = append(errs, fmt.Errorf("removing node dir: %w", err))
	}
	return errors.Join(errs...)
}

// RequireNode skips the test (fails it under CI=true) unless a node can
// run here: Linux, root, network namespaces, the Kubernetes binaries from
// hack/build-k8s.sh, containerd, runc, the CNI plugins and the tools in
// nodeTools.
func RequireNode(t testing.TB) {
	t.Helper()
	testnet.Require(t, nodeTools...)
	dir := BinDir()
	for _, b := range nodeBinaries {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			testkit.SkipOrFail(t, "no %s binary in %s (set %s or run hack/build-k8s.sh)", b, dir, BinDirEnv)
		}
	}
	for _, p := range cniPlugins {
		if _, err := os.Stat(filepath.Join(CNIBinDir, p)); err != nil {
			testkit.SkipOrFail(t, "no CNI plugin %s in %s (apt-get install containernetworking-plugins)", p, CNIBinDir)
		}
	}
}

var sharedNode struct {
	mu      sync.Mutex
	node    *Node
	err     error // a failed start is not retried
	stopped bool
}

// nodeStartTimeout bounds NewNode in StartNode (a cold image build
// included).
const nodeStartTimeout = 10 * time.Minute

// StartNode returns the test binary's node, starting it on first use; the
// node is shared by the binary's tests and stopped by Main (use
// `func TestMain(m *testing.M) { cluster.Main(m) }`). Images opts asks for
// that the node does not have yet are built and loaded. It skips the test
// (fails it under CI=true) when the node cannot run here, and fails it when
// the node does not start. If the calling test fails, the components' log
// output meanwhile is dumped to it.
func StartNode(t testing.TB, opts NodeOptions) *Node {
	t.Helper()
	RequireNode(t)
	if opts.ImageTag != "" {
		testnet.Require(t, "iptables-legacy", "ldd")
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodeStartTimeout)
	defer cancel()

	sharedNode.mu.Lock()
	if sharedNode.stopped {
		sharedNode.mu.Unlock()
		t.Fatal("cluster.StartNode called after cluster.Main stopped the node")
	}
	if sharedNode.node == nil && sharedNode.err == nil {
		sharedNode.node, sharedNode.err = NewNode(ctx, opts)
		if sharedNode.err == nil {
			// The node outlives this test: no more logging to it.
			sharedNode.node.imageMu.Lock()
			sharedNode.node.logf = nil
			sharedNode.node.imageMu.Unlock()
			t.Logf("cluster: node %s (Kubernetes %s) ready in %v; kubeconfig %s", sharedNode.node.id, Version, sharedNode.node.StartupTime.Round(time.Millisecond), sharedNode.node.Kubeconfig)
		}
	} else if sharedNode.err == nil {
		// Started by an earlier test: add what this one asks for.
		if opts.ImageTag != "" || len(opts.Images) > 0 {
			paths, err := buildNodeImages(ctx, opts.ImageTag)
			if err == nil {
				err = sharedNode.node.LoadImages(ctx, append(paths, opts.Images...)...)
			}
			if err != nil {
				sharedNode.mu.Unlock()
				t.Fatalf("loading images into the node: %v", err)
			}
		}
	}
	n, err := sharedNode.node, sharedNode.err
	sharedNode.mu.Unlock()
	if err != nil {
		t.Fatalf("starting the test node: %v", err)
	}
	marks := n.logSizes()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node component logs during this test (all in %s):%s", n.LogDir, n.logTails(marks, 16<<10))
		}
	})
	return n
}

// stopSharedNode stops the test binary's node, if one was started.
func stopSharedNode() error {
	sharedNode.mu.Lock()
	defer sharedNode.mu.Unlock()
	sharedNode.stopped = true
	n := sharedNode.node
	sharedNode.node = nil
	if n == nil {
		return nil
	}
	return n.Stop()
}
