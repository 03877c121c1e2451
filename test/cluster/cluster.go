// Package cluster runs a real kube-apiserver and etcd on 127.0.0.1 for
// tests: no kubelet, no controller manager, no scheduler, just the API.
//
// The binaries are built from the Go module proxy by hack/build-k8s.sh into
// $L5D_K8S_BIN (default /var/tmp/l5d-k8s/v1.36.3/bin). When they are
// missing, Start skips the test, or fails it when CI=true.
//
// One cluster is started per test binary, on first use, and shared by its
// tests; give each test its own namespace with Namespace. Stop it at the end
// with a TestMain:
//
//	func TestMain(m *testing.M) { cluster.Main(m) }
//
// Without TestMain the processes still die with the test binary (they get
// SIGKILL when their parent exits) and their data directory is removed by
// the next Start in any test binary.
//
// For real pods, StartNode starts a whole single-node cluster instead (a
// kubelet with containerd, the controller manager, the scheduler,
// kube-proxy and cluster DNS, in a network namespace); see node.go.
//
// Because Start's cluster has no kube-controller-manager, nothing creates
// ServiceAccounts or garbage-collects: Namespace creates the "default"
// ServiceAccount, tests create any other ServiceAccount they need, and
// namespaces stay Terminating after deletion.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/linkerd-go/linkerd/internal/k8sbin"
	"github.com/linkerd-go/linkerd/internal/testkit"
)

// Version is the Kubernetes version hack/build-k8s.sh builds by default.
const Version = k8sbin.Version

// BinDirEnv names the environment variable that points at the directory
// holding the etcd and kube-apiserver binaries.
const BinDirEnv = k8sbin.DirEnv

// Issuer is the service-account token issuer (--service-account-issuer),
// also the API server's default audience (--api-audiences).
const Issuer = "https://kubernetes.default.svc.cluster.local"

// ServiceCIDR is the range Service cluster IPs are allocated from.
const ServiceCIDR = "10.96.0.0/16"

// Cluster is a running etcd and kube-apiserver. Its fields are read-only.
type Cluster struct {
	// Kubeconfig is the path of a kubeconfig file for the admin user
	// (client certificate, group system:masters).
	Kubeconfig string
	// RESTConfig is the admin user's client configuration. Copy it
	// (rest.CopyConfig) before changing it.
	RESTConfig *rest.Config
	// Client is a clientset for the admin user.
	Client kubernetes.Interface
	// Server is the API server's URL, https://127.0.0.1:PORT.
	Server string
	// EtcdURL is etcd's client URL.
	EtcdURL string
	// Dir holds the cluster's data, PKI and kubeconfig; removed at stop.
	Dir string

	etcd, apiserver *process
	etcdLog, apiLog *logBuffer
}

// BinDir returns the directory the binaries are taken from.
func BinDir() string { return k8sbin.Dir() }

var shared struct {
	mu      sync.Mutex
	cluster *Cluster
	err     error // a failed start is not retried
	stopped bool
}

// Start returns the test binary's cluster, starting it on first use. It
// skips the test (fails it under CI=true) when the binaries are missing,
// and fails it when the cluster cannot start. If the calling test fails,
// the etcd and kube-apiserver output logged meanwhile is dumped to it.
func Start(t testing.TB) *Cluster {
	t.Helper()
	testkit.Integration(t)
	dir := BinDir()
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			testkit.SkipOrFail(t, "no %s binary in %s (set %s or run hack/build-k8s.sh to build etcd and kube-apiserver %s)", b, dir, BinDirEnv, Version)
		}
	}

	shared.mu.Lock()
	if shared.stopped {
		shared.mu.Unlock()
		t.Fatal("cluster.Start called after cluster.Main stopped the cluster")
	}
	if shared.cluster == nil && shared.err == nil {
		begin := time.Now()
		shared.cluster, shared.err = start(dir)
		if shared.err == nil {
			t.Logf("cluster: etcd and kube-apiserver %s ready at %s in %v", Version, shared.cluster.Server, time.Since(begin).Round(time.Millisecond))
		}
	}
	c, err := shared.cluster, shared.err
	shared.mu.Unlock()
	if err != nil {
		t.Fatalf("starting the test cluster: %v", err)
	}

	etcdMark, apiMark := c.etcdLog.Mark(), c.apiLog.Mark()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		const limit = 64 << 10
		for _, l := range []struct {
			name string
			buf  *logBuffer
			mark int64
		}{{"etcd", c.etcdLog, etcdMark}, {"kube-apiserver", c.apiLog, apiMark}} {
			out, truncated := l.buf.Since(l.mark, limit)
			if len(out) == 0 {
				continue
			}
			note := ""
			if truncated {
				note = ", truncated to the newest lines"
			}
			t.Logf("%s output during this test%s:\n%s", l.name, note, out)
		}
	})
	return c
}

// Main runs the tests, stops the cluster and the node if they were
// started, and exits.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if err := Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Stop stops the test binary's cluster and node (StartNode), if they were
// started, and removes their data. Later calls to Start and StartNode fail.
// Main calls it.
func Stop() error {
	nodeErr := stopSharedNode()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.stopped = true
	c := shared.cluster
	shared.cluster = nil
	if c == nil {
		return nodeErr
	}
	return errors.Join(c.stop(), nodeErr)
}

// attempts bounds how often start retries with new ports: a port found
// free may be taken by another process before the server binds it.
const attempts = 3

func start(binDir string) (*Cluster, error) {
	sweepStaleDirs()
	var errs []error
	for range attempts {
		c, err := startOnce(binDir)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

var errAddrInUse = errors.New("address already in use")

const dirPrefix = "l5d-cluster-"

// ownerFile in a cluster's Dir holds the pid of the test binary owning it.
const ownerFile = "owner.pid"

func startOnce(binDir string) (c *Cluster, err error) {
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("cluster dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return nil, fmt.Errorf("cluster dir: %w", err)
	}
	c = &Cluster{Dir: dir, etcdLog: newLogBuffer(1 << 20), apiLog: newLogBuffer(4 << 20)}
	defer func() {
		if err != nil {
			_ = c.stop()
		}
	}()

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]

	p, err := writePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return nil, err
	}

	c.EtcdURL = fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	c.etcd, err = startProcess("etcd", filepath.Join(binDir, "etcd"), []string{
		"--name=test",
		"--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + c.EtcdURL,
		"--advertise-client-urls=" + c.EtcdURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=test=" + peerURL,
		"--unsafe-no-fsync",
		"--log-level=warn",
	}, c.etcdLog)
	if err != nil {
		return nil, err
	}
	if err := waitFor(30*time.Second, c.etcd, c.etcdLog, func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, c.EtcdURL+"/health")
	}); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}

	c.Server = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	c.apiserver, err = startProcess("kube-apiserver", filepath.Join(binDir, "kube-apiserver"), []string{
		"--etcd-servers=" + c.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--tls-cert-file=" + p.ServingCert,
		"--tls-private-key-file=" + p.ServingKey,
		"--client-ca-file=" + p.CACert,
		"--service-account-issuer=" + Issuer,
		"--api-audiences=" + Issuer,
		"--service-account-key-file=" + p.SAPublicKey,
		"--service-account-signing-key-file=" + p.SASigningKey,
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--cert-dir=" + filepath.Join(dir, "certs"),
		// The "kubernetes" Service's endpoint cannot be a loopback
		// address: the reconciler would fail every 10s.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	}, c.apiLog)
	if err != nil {
		return nil, err
	}

	c.RESTConfig, c.Client, err = adminClient(c.Server, p.CAPEM, p.AdminCertPEM, p.AdminKeyPEM, "l5d-test-cluster")
	if err != nil {
		return nil, err
	}
	rc := c.Client.Discovery().RESTClient()
	if err := waitFor(120*time.Second, c.apiserver, c.apiLog, func(ctx context.Context) error {
		_, err := rc.Get().AbsPath("/readyz").Timeout(5 * time.Second).DoRaw(ctx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}

	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, c.Server, p); err != nil {
		return nil, err
	}
	return c, nil
}

// adminClient makes the REST config and clientset of the API server's
// admin user at server, identified by a client certificate.
func adminClient(server string, caPEM, certPEM, keyPEM []byte, userAgent string) (*rest.Config, kubernetes.Interface, error) {
	cfg := &rest.Config{
		Host: server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   caPEM,
			CertData: certPEM,
			KeyData:  keyPEM,
		},
		// Tests measure latencies: no client-side throttling.
		QPS:       1000,
		Burst:     2000,
		UserAgent: userAgent,
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("clientset: %w", err)
	}
	return cfg, client, nil
}

func writeKubeconfig(path, server string, p *pkiFiles) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.CAPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.AdminCertPEM, ClientKeyData: p.AdminKeyPEM}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

// waitFor polls ready every 100ms until it succeeds, the process exits or
// timeout passes.
func waitFor(timeout time.Duration, p *process, log *logBuffer, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if done, err := p.exited(); done {
			out, _ := log.Since(0, 8<<10)
			if strings.Contains(string(out), "address already in use") {
				return fmt.Errorf("exited (%v): %w; output:\n%s", err, errAddrInUse, out)
			}
			return fmt.Errorf("exited (%v) before it was ready; output:\n%s", err, out)
		}
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		last = ready(pctx)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			out, _ := log.Since(0, 8<<10)
			return fmt.Errorf("not ready after %v (last error: %v); output:\n%s", timeout, last, out)
		case <-tick.C:
		}
	}
}

func httpOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// freePorts returns n distinct ports that were free on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *Cluster) stop() error {
	var errs []error
	if c.apiserver != nil {
		errs = append(errs, c.apiserver.stop(10*time.Second))
	}
	if c.etcd != nil {
		errs = append(errs, c.etcd.stop(10*time.Second))
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		errs = append(errs, fmt.Errorf("removing cluster dir: %w", err))
	}
	return errors.Join(errs...)
}

// sweepStaleDirs removes the data directories of clusters whose test
// binary is gone (killed, or run without Main).
func sweepStaleDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range matches {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // not ours, or still being created
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

// Namespace creates a namespace with a fresh name derived from the test's
// name, and its "default" ServiceAccount (there is no controller manager
// to create it). The namespace is deleted when the test ends.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := createNamespace(ctx, t, c.Client)
	if _, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ServiceAccount %s/default: %v", ns, err)
	}
	return ns
}

// createNamespace creates a namespace with a fresh name derived from the
// test's name and deletes it when the test ends.
func createNamespace(ctx context.Context, t testing.TB, client kubernetes.Interface) string {
	t.Helper()
	ns := namespaceName(t.Name())
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", ns, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", ns, err)
		}
	})
	return ns
}

// namespaceName makes a DNS label from a test name plus a random suffix.
func namespaceName(testName string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 50 {
			break
		}
	}
	base := strings.TrimRight(b.String(), "-")
	if base == "" {
		base = "test"
	}
	return base + "-" + rand.String(6)
}
