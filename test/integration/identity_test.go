package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/linkerd-go/linkerd/controller/identity/localtoken"
	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/internal/testnet"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/pki"
)

const (
	controlNS   = "linkerd"
	trustDomain = "cluster.local"
	appNS       = "test"
)

// controlPlane is a meshed "pod" running the identity service, as Linkerd's
// identity deployment: its own proxy gets a certificate from localhost, and
// terminates the other proxies' mTLS in front of the service.
type controlPlane struct {
	pod        *meshedPod
	anchor     *pki.CA
	anchorsPEM string
	tokens     *localtoken.Issuer
	dir        string
	identityID string
}

func identityName(sa, ns string) string { return identity.Name(sa, ns, controlNS, trustDomain) }

func startControlPlane(t *testing.T, n *testnet.Network, bins map[string]string, identityArgs ...string) *controlPlane {
	t.Helper()
	// Not t.TempDir: its parent is private, and the proxies (uid 2102) read their tokens here.
	dir, err := os.MkdirTemp("", "l5dt-cp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	anchor, err := pki.NewCA("root."+controlNS+"."+trustDomain, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := anchor.NewIssuer("identity."+controlNS+"."+trustDomain, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodePrivateKeyPEM(issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	anchors := pki.EncodeCertificatesPEM(anchor.Cert)
	tokenKey, err := localtoken.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "issuer", "crt.pem"), pki.EncodeCertificatesPEM(issuer.Cert), 0o600)
	write(t, filepath.Join(dir, "issuer", "key.pem"), keyPEM, 0o600)
	write(t, filepath.Join(dir, "ca-bundle.crt"), anchors, 0o644)
	write(t, filepath.Join(dir, "token.key"), tokenKey, 0o600)

	cp := &controlPlane{anchor: anchor, anchorsPEM: string(anchors), dir: dir, identityID: identityName("linkerd-identity", controlNS),
		tokens: &localtoken.Issuer{Key: tokenKey, ControllerNamespace: controlNS, TrustDomain: trustDomain}}
	pod := n.AddPod("control")
	pod.Start(t, testnet.ProcSpec{Name: "identity", Path: bins["linkerd-controller"], Args: append([]string{"identity",
		"-addr", ":8080", "-admin-addr", ":9990", "-issuer-dir", filepath.Join(dir, "issuer"),
		"-trust-anchors", filepath.Join(dir, "ca-bundle.crt"), "-token-mode", "local",
		"-local-token-key", filepath.Join(dir, "token.key"),
		"-identity-trust-domain", trustDomain, "-controller-namespace", controlNS}, identityArgs...)})
	cp.pod = startMeshedPod(t, pod, bins, cp.proxyEnv(t, "linkerd-identity", controlNS, "localhost:8080")...)
	return cp
}

// proxyEnv is the identity configuration of a proxy for ServiceAccount sa.
func (cp *controlPlane) proxyEnv(t *testing.T, sa, ns, svcAddr string) []string {
	t.Helper()
	token, err := cp.tokens.Issue(sa, ns, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(cp.dir, "tokens", sa+"."+ns)
	write(t, tokenFile, token, 0o644)
	if err := os.MkdirAll(filepath.Join(cp.dir, "end-entity"), 0o755); err != nil {
		t.Fatal(err)
	}
	idDir, err := os.MkdirTemp(filepath.Join(cp.dir, "end-entity"), sa+"."+ns+"-") // one per proxy
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(idDir, proxyUID, proxyUID); err != nil {
		t.Fatal(err)
	}
	return []string{
		"LINKERD2_PROXY_IDENTITY_SVC_ADDR=" + svcAddr,
		"LINKERD2_PROXY_IDENTITY_SVC_NAME=" + cp.identityID,
		"LINKERD2_PROXY_IDENTITY_LOCAL_NAME=" + identityName(sa, ns),
		"LINKERD2_PROXY_IDENTITY_TOKEN_FILE=" + tokenFile,
		"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS=" + cp.anchorsPEM,
		"LINKERD2_PROXY_IDENTITY_DIR=" + idDir,
	}
}

func write(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

// remoteIdentityAddr is how workloads reach the identity service.
func (cp *controlPlane) remoteIdentityAddr() string { return fmt.Sprintf("%s:8080", cp.pod.IP) }

// rotateIssuer replaces the issuer with a new one from the same anchor, the
// way a Secret update lands in the mounted directory.
func (cp *controlPlane) rotateIssuer(t *testing.T, lifetime time.Duration) *pki.CA {
	t.Helper()
	issuer, err := cp.anchor.NewIssuer("identity."+controlNS+"."+trustDomain, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodePrivateKeyPEM(issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"crt.pem": pki.EncodeCertificatesPEM(issuer.Cert), "key.pem": keyPEM} {
		tmp := filepath.Join(cp.dir, "issuer", "."+name)
		write(t, tmp, b, 0o600)
		if err := os.Rename(tmp, filepath.Join(cp.dir, "issuer", name)); err != nil {
			t.Fatal(err)
		}
	}
	return issuer
}

// TestRotationUnderLoad renews leaf certificates every ~2 s and rotates the
// issuer while a client keeps sending HTTP requests and opening new opaque
// TCP connections (each a fresh mTLS handshake) through a proxy pair: not one
// may fail.
func TestRotationUnderLoad(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-controller", "./test/testapp")
	n := testnet.New(t)
	cp := startControlPlane(t, n, bins, "-identity-issuance-lifetime", "3s", "-identity-clock-skew-allowance", "1s")
	clientPod, serverPod := n.AddPod("client"), n.AddPod("server")
	serverID := identityName("server", appNS)
	refresh := "LINKERD2_PROXY_IDENTITY_MIN_REFRESH=500ms"
	a := startMeshedPod(t, clientPod, bins, append(cp.proxyEnv(t, "client", appNS, cp.remoteIdentityAddr()), refresh,
		fmt.Sprintf("LINKERD2_PROXY_STATIC_ENDPOINTS=%s=%s", serverPod.IP, serverID))...)
	b := startMeshedPod(t, serverPod, bins, append(cp.proxyEnv(t, "server", appNS, cp.remoteIdentityAddr()), refresh)...)
	serverPod.Start(t, testnet.ProcSpec{Name: "app", Path: bins["testapp"], Args: []string{"--http", "8080", "--tcp", "8083", "--grpc", "0", "--banner", "0"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := serverPod.WaitTCP(ctx, "127.0.0.1:8083"); err != nil {
		t.Fatal(err)
	}

	const loadFor = 10 * time.Second
	var requests, conns atomic.Int64
	var failures []string
	var mu sync.Mutex
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	stop := time.Now().Add(loadFor)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // HTTP over the pooled proxy-to-proxy connections
		defer wg.Done()
		c := a.httpClient(false)
		defer c.CloseIdleConnections()
		for i := 0; time.Now().Before(stop) && i < 20000; i++ {
			resp, err := c.Get("http://" + serverPod.Addr(8080) + "/")
			if err != nil {
				fail("request %d: %v", i, err)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				fail("request %d: status %d", i, resp.StatusCode)
			}
			requests.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	go func() { // a new mTLS connection every time
		defer wg.Done()
		for i := 0; time.Now().Before(stop) && i < 5000; i++ {
			if err := tcpEcho(a, serverPod.Addr(8083), fmt.Sprintf("line %d\n", i)); err != nil {
				fail("connection %d: %v", i, err)
				continue
			}
			conns.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// Rotate once load flows through both paths.
	testkit.EventuallyTrue(t, 30*time.Second, "requests and mTLS connections through the proxies", func() bool {
		return requests.Load() >= 20 && conns.Load() >= 5
	})
	refreshesBefore := b.metric(t, "identity_cert_refresh_count", nil)
	newIssuer := cp.rotateIssuer(t, 48*time.Hour)
	wg.Wait()

	for _, f := range failures {
		t.Error(f)
	}
	if requests.Load() == 0 || conns.Load() == 0 {
		t.Fatalf("no load went through: %d requests, %d connections", requests.Load(), conns.Load())
	}
	t.Logf("%d requests and %d new mTLS connections during rotation", requests.Load(), conns.Load())
	// The service picked up the new issuer (its expiry gauge moved to the new one's).
	want := float64(newIssuer.Cert.NotAfter.Unix())
	if got := cp.adminMetric(t, "identity_issuer_expiry_timestamp_seconds"); got != want {
		t.Errorf("identity service issuer expiry %v, want the new issuer's %v", got, want)
	}
	// Leaves kept being renewed through the rotation.
	for _, p := range []*meshedPod{a, b} {
		if n := p.metric(t, "identity_cert_refresh_count", nil); n < refreshesBefore+2 {
			t.Errorf("%s: identity_cert_refresh_count %v, want at least %v", p.Name, n, refreshesBefore+2)
		}
	}
	b.waitMetric(t, "tcp_open_total", map[string]string{"direction": "inbound", "peer": "src", "tls": "true",
		"client_id": identityName("client", appNS)}, float64(conns.Load()))
}

// tcpEcho sends a line over a new connection from pod p and reads it back.
func tcpEcho(p *meshedPod, addr, line string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := p.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != line {
		return fmt.Errorf("echo %q, want %q", got, line)
	}
	return nil
}

// adminMetric reads a metric from the identity service's admin server.
func (cp *controlPlane) adminMetric(t *testing.T, name string) float64 {
	t.Helper()
	c := cp.pod.httpClient(false)
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://127.0.0.1:9990/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	fam := fams[name]
	if fam == nil || len(fam.Metric) == 0 {
		t.Fatalf("identity service has no %s", name)
	}
	return fam.Metric[0].GetGauge().GetValue() + fam.Metric[0].GetCounter().GetValue()
}
