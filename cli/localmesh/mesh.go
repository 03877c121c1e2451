package localmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linkerd-go/linkerd/controller/identity/localtoken"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/pki"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
	"github.com/linkerd-go/linkerd/pkg/version"
)

const (
	// DefaultStateDir is where the local mesh keeps its state by default.
	DefaultStateDir = "/run/linkerd-local"
	// DefaultSubnet is the pods' subnet by default.
	DefaultSubnet = "10.250.0.0/24"
	// DefaultServiceCIDR is the range of virtual cluster IPs.
	DefaultServiceCIDR = "10.96.0.0/16"

	// ControlPlaneNamespace is the namespace of the control plane's pods.
	ControlPlaneNamespace = "linkerd"
	// TrustDomain is the mesh's identity trust domain.
	TrustDomain = "cluster.local"
	// ClusterDomain is the suffix of Service names.
	ClusterDomain = "cluster.local"

	// ProxyUID is the user the proxies run as (linkerd-init skips its
	// traffic).
	ProxyUID = 2102

	bridgeName    = "br0"
	identityName  = "linkerd-identity"
	destName      = "linkerd-destination"
	identityPort  = 8080
	proxyAdmin    = 4191
	readyTimeout  = 30 * time.Second
	appSettle     = 300 * time.Millisecond
	tokenLifetime = 365 * 24 * time.Hour
	caLifetime    = 365 * 24 * time.Hour
)

// ErrNotRoot is returned when the process lacks the privileges for network
// namespaces and iptables. The local mesh has no unprivileged mode: without
// them nothing is started.
var ErrNotRoot = errors.New("linkerd local needs root (network namespaces and iptables); run it with sudo")

// ErrNotUp is returned by operations that need a running mesh.
var ErrNotUp = errors.New("the local mesh is not up (run: linkerd local up)")

// geteuid and procStatus are replaced in tests.
var (
	geteuid    = os.Geteuid
	procStatus = func() ([]byte, error) { return os.ReadFile("/proc/self/status") }
)

// Capabilities the mesh needs: network namespaces and iptables
// (CAP_NET_ADMIN), mounting them and the pods' hosts files (CAP_SYS_ADMIN).
const (
	capNetAdmin = 12
	capSysAdmin = 21
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// Config locates the mesh's state and binaries.
type Config struct {
	// StateDir holds the state file, logs, certificates, tokens and the
	// resource store; empty means DefaultStateDir.
	StateDir string
	// BinDir holds linkerd-proxy, linkerd-init and linkerd-controller;
	// empty means the directory of the running executable.
	BinDir string
	// Subnet is the pods' subnet for Up; empty means DefaultSubnet.
	Subnet string
	// Log receives progress messages; nil discards them.
	Log io.Writer
	// Supervisor is the command that runs Supervise for a pod, to which
	// Run appends --state-dir DIR --bin-dir DIR --pod NAMESPACE/NAME; the
	// CLI's hidden `linkerd local supervise`. Run needs it.
	Supervisor []string
	// InstallMissing lets Up install the Debian packages of missing tools
	// (prerequisites.txt) with apt-get when it runs as root on a machine
	// with apt-get, before checking the prerequisites again.
	InstallMissing bool
}

// Mesh operates the local mesh described by a Config.
type Mesh struct {
	cfg Config
}

// New returns a Mesh for cfg, filling in defaults.
func New(cfg Config) (*Mesh, error) {
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	cfg.StateDir = abs
	if cfg.BinDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("locate binaries: %w", err)
		}
		cfg.BinDir = filepath.Dir(exe)
	}
	if cfg.Subnet == "" {
		cfg.Subnet = DefaultSubnet
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	return &Mesh{cfg: cfg}, nil
}

// StateDir returns the state directory.
func (m *Mesh) StateDir() string { return m.cfg.StateDir }

// StoreDir returns the resource store directory destination reads.
func (m *Mesh) StoreDir() string { return filepath.Join(m.cfg.StateDir, "store") }

func (m *Mesh) statePath() string { return statePathOf(m.cfg.StateDir) }

// statePathOf is the state file of the mesh whose state is in stateDir.
func statePathOf(stateDir string) string { return filepath.Join(stateDir, "state.json") }
func (m *Mesh) path(p ...string) string {
	return filepath.Join(append([]string{m.cfg.StateDir}, p...)...)
}
func (m *Mesh) bin(name string) string { return filepath.Join(m.cfg.BinDir, name) }
func (m *Mesh) logf(format string, args ...any) {
	fmt.Fprintf(m.cfg.Log, format+"\n", args...)
}

// CheckPrivileges returns ErrNotRoot unless the process may create network
// namespaces: it runs as root with CAP_NET_ADMIN and CAP_SYS_ADMIN in effect
// (root in a container without them is refused too, rather than failing
// half-way through).
func CheckPrivileges() error {
	if geteuid() != 0 {
		return ErrNotRoot
	}
	b, err := procStatus()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotRoot, err)
	}
	if missing := missingCaps(string(b), capNetAdmin, capSysAdmin); missing != "" {
		return fmt.Errorf("%w (missing %s)", ErrNotRoot, missing)
	}
	return nil
}

// missingCaps returns the names of the capabilities among caps that the
// CapEff line of a /proc/PID/status lacks, comma-separated; all of them when
// the line is missing or malformed.
func missingCaps(status string, caps ...int) string {
	var eff uint64
	found := false
	for line := range strings.Lines(status) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			eff, found = n, err == nil
			break
		}
	}
	names := map[int]string{capNetAdmin: "CAP_NET_ADMIN", capSysAdmin: "CAP_SYS_ADMIN"}
	var missing []string
	for _, c := range caps {
		if !found || eff&(1<<c) == 0 {
			missing = append(missing, names[c])
		}
	}
	return strings.Join(missing, ",")
}

// lock serializes CLI invocations on one state directory with a lock file
// next to it (the directory itself is removed by Down).
func (m *Mesh) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Clean(m.cfg.StateDir)+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock state: %w", err)
	}
	return func() { f.Close() }, nil
}

// lockCtx is lock for the supervisors: it gives up when ctx is done (a
// supervisor told to stop must not wait for Down's lock, nor act after it).
func (m *Mesh) lockCtx(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(filepath.Clean(m.cfg.StateDir)+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock state: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock state: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// lockStore serializes the writers of the store and the hosts files (Run,
// Apply, the supervisors), until ctx is done.
func (m *Mesh) lockStore(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(m.path("store.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock store: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock store: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock store: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// load reads the state; ErrNotUp if there is none.
func (m *Mesh) load() (*State, error) {
	s, err := loadState(m.statePath())
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, ErrNotUp
	}
	return s, nil
}

// Up creates the network and the control plane. If the mesh is already up
// it restarts any control plane process that died and returns. If creating
// the mesh fails, everything created so far is removed.
//
// Before creating a mesh, Up checks every prerequisite (Prerequisites) and
// returns a *PrerequisiteError listing all that are missing, with their
// fixes, without creating anything.
func (m *Mesh) Up(ctx context.Context) error {
	if err := CheckPrivileges(); err != nil {
		// Not root: nothing can be read or created; say all that is missing.
		return m.checkPrerequisites(ctx, machine)
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	s, err := loadState(m.statePath())
	if err != nil {
		return err
	}
	if s != nil {
		return m.repair(ctx, s)
	}
	if err := m.checkPrerequisites(ctx, machine); err != nil {
		return err
	}
	if err := m.up(ctx); err != nil {
		if derr := m.down(ctx); derr != nil {
			return fmt.Errorf("%w (and cleaning up: %w)", err, derr)
		}
		return err
	}
	return nil
}

// repair restarts the dead processes of an existing mesh: the control
// plane's, and the proxies and supervisors of workloads (a supervisor then
// restarts its application).
func (m *Mesh) repair(ctx context.Context, s *State) error {
	if !netnsExists(s.SwitchNS) {
		return fmt.Errorf("state in %s describes a mesh whose network is gone; run linkerd local down first", m.cfg.StateDir)
	}
	restarted := 0
	for _, w := range s.Workloads {
		for _, p := range w.Procs {
			if alive(p) {
				continue
			}
			if p.Role == roleSupervisor {
				// An application that outlived its supervisor would
				// hold the port its successor starts.
				if st, err := readAppStatus(m.appStatusPath(w)); err == nil {
					if err := stop(ctx, &Proc{Role: roleApp, PID: st.PID, StartTime: st.StartTime}); err != nil {
						return err
					}
				}
			}
			if err := start(p); err != nil {
				return err
			}
			restarted++
			m.logf("restarted %s in %s", p.Role, w.Key())
		}
	}
	if err := saveState(m.statePath(), s); err != nil {
		return err
	}
	if restarted == 0 {
		m.logf("the local mesh is already up (state in %s)", m.cfg.StateDir)
	}
	return nil
}

func (m *Mesh) up(ctx context.Context) error {
	subnet, err := netip.ParsePrefix(m.cfg.Subnet)
	if err != nil || !subnet.Addr().Is4() {
		return fmt.Errorf("invalid subnet %q: want an IPv4 CIDR", m.cfg.Subnet)
	}
	prefix := namePrefix(m.cfg.StateDir)
	s := &State{
		Prefix:      prefix,
		SwitchNS:    prefix + "switch",
		Subnet:      subnet.Masked(),
		ServiceCIDR: netip.MustParsePrefix(DefaultServiceCIDR),
		Services:    map[string]netip.Addr{},
		Version:     version.Version,
	}
	if netnsExists(s.SwitchNS) {
		return fmt.Errorf("network namespace %s exists without state in %s; remove it (ip netns del %s) or use another --state-dir", s.SwitchNS, m.cfg.StateDir, s.SwitchNS)
	}
	for _, d := range []string{"", "store", "logs", "tokens", "pods", "identity"} {
		if err := os.MkdirAll(m.path(d), 0o755); err != nil {
			return fmt.Errorf("create state dir: %w", err)
		}
		// Readable by the proxies' user (tokens, trust anchors).
		if err := os.Chmod(m.path(d), 0o755); err != nil {
			return fmt.Errorf("create state dir: %w", err)
		}
	}
	// Saved before anything is created, so that down can clean up.
	if err := saveState(m.statePath(), s); err != nil {
		return err
	}
	if err := m.writePKI(); err != nil {
		return err
	}
	sw := s.SwitchNS
	for _, args := range [][]string{
		{"netns", "add", sw},
		{"-n", sw, "link", "set", "lo", "up"},
		{"-n", sw, "link", "add", bridgeName, "type", "bridge"},
		{"-n", sw, "link", "set", bridgeName, "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return fmt.Errorf("create network: %w", err)
		}
	}
	hostIP, why, err := hostLink(ctx, s)
	if err != nil {
		return err
	}
	if why != "" {
		m.logf("network %s on bridge %s in namespace %s; %s", s.Subnet, bridgeName, sw, why)
	} else {
		m.logf("network %s on bridge %s in namespace %s, the host at %s", s.Subnet, bridgeName, sw, hostIP)
	}

	anchors, err := os.ReadFile(m.path("identity", "ca-bundle.crt"))
	if err != nil {
		return fmt.Errorf("read trust anchors: %w", err)
	}
	// Identity: its proxy gets its own certificate from the service next
	// to it, as Linkerd's identity pod does.
	idw := &Workload{Name: identityName, Namespace: ControlPlaneNamespace, ServiceAccount: identityName, ControlPlane: true}
	idProc := &Proc{Role: "identity", Args: []string{m.bin("linkerd-controller"), "identity",
		"-addr", fmt.Sprintf(":%d", identityPort), "-admin-addr", ":9990",
		"-issuer-dir", m.path("identity", "issuer"), "-trust-anchors", m.path("identity", "ca-bundle.crt"),
		"-token-mode", "local", "-local-token-key", m.path("identity", "token.key"),
		"-identity-trust-domain", TrustDomain, "-controller-namespace", ControlPlaneNamespace}}
	if err := m.addPod(ctx, s, idw, string(anchors), fmt.Sprintf("localhost:%d", identityPort), false, idProc); err != nil {
		return err
	}
	dw := &Workload{Name: destName, Namespace: ControlPlaneNamespace, ServiceAccount: destName, ControlPlane: true}
	dProc := &Proc{Role: "destination", Args: []string{m.bin("linkerd-controller"), "destination",
		"-addr", fmt.Sprintf(":%d", k8s.DestinationGRPCPort), "-admin-addr", ":9996", "-local-store", m.StoreDir(),
		"-controller-namespace", ControlPlaneNamespace, "-identity-trust-domain", TrustDomain, "-cluster-domain", ClusterDomain}}
	// The policy controller runs next to destination, as in Linkerd's destination pod.
	pProc := &Proc{Role: "policy", Args: []string{m.bin("linkerd-controller"), "policy",
		"-addr", fmt.Sprintf(":%d", k8s.PolicyGRPCPort), "-admin-addr", ":9990", "-local-store", m.StoreDir(),
		"-controller-namespace", ControlPlaneNamespace, "-identity-trust-domain", TrustDomain}}
	if err := m.addPod(ctx, s, dw, string(anchors), "", false, dProc, pProc); err != nil {
		return err
	}
	m.logf("control plane up: identity %s:%d, destination %s:%d", idw.IP, identityPort, dw.IP, k8s.DestinationGRPCPort)
	if bin := findPrometheus(); bin != "" {
		return m.addPrometheus(ctx, s, string(anchors), bin)
	}
	m.logf("prometheus is not installed: metrics are on each proxy's :4191/metrics only")
	return nil
}

// writePKI generates the trust anchor, the issuer and the local token key.
func (m *Mesh) writePKI() error {
	anchor, err := pki.NewCA("root."+ControlPlaneNamespace+"."+TrustDomain, caLifetime)
	if err != nil {
		return fmt.Errorf("generate trust anchor: %w", err)
	}
	issuer, err := anchor.NewIssuer("identity."+ControlPlaneNamespace+"."+TrustDomain, caLifetime)
	if err != nil {
		return fmt.Errorf("generate issuer: %w", err)
	}
	keyPEM, err := pki.EncodePrivateKeyPEM(issuer.Key)
	if err != nil {
		return fmt.Errorf("encode issuer key: %w", err)
	}
	tokenKey, err := localtoken.GenerateKey()
	if err != nil {
		return fmt.Errorf("generate token key: %w", err)
	}
	for _, f := range []struct {
		path string
		b    []byte
		mode os.FileMode
	}{
		{m.path("identity", "issuer", "crt.pem"), pki.EncodeCertificatesPEM(issuer.Cert), 0o600},
		{m.path("identity", "issuer", "key.pem"), keyPEM, 0o600},
		{m.path("identity", "ca-bundle.crt"), pki.EncodeCertificatesPEM(anchor.Cert), 0o644},
		{m.path("identity", "token.key"), tokenKey, 0o600},
	} {
		if err := writeFileAtomic(f.path, f.b, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// identityOf returns the TLS identity of ServiceAccount sa in ns.
func identityOf(sa, ns string) string {
	return identity.Name(sa, ns, ControlPlaneNamespace, TrustDomain)
}

// podDir is the state directory of workload w.
func (m *Mesh) podDir(w *Workload) string { return m.path("pods", w.Namespace+"."+w.Name) }

// addPod creates w's namespace on the bridge, installs linkerd-init's rules,
// starts the proxy (identity from identityAddr; empty means the identity
// pod's address), waits for it to be ready, then starts the app processes.
// With discovery, the proxy uses the destination service. The workload is
// recorded in s (and saved) before anything is created.
func (m *Mesh) addPod(ctx context.Context, s *State, w *Workload, anchors, identityAddr string, discovery bool, apps ...*Proc) error {
	ip, err := s.allocatePodIP()
	if err != nil {
		return err
	}
	w.IP = ip
	w.NetNS = s.Prefix + w.Namespace + "-" + w.Name
	w.HostVeth = "veth" + strconv.Itoa(s.NextVeth)
	w.Identity = identityOf(w.ServiceAccount, w.Namespace)
	s.NextVeth++
	s.Workloads = append(s.Workloads, w)
	if err := saveState(m.statePath(), s); err != nil {
		return err
	}
	dir := m.podDir(w)
	if err := os.MkdirAll(filepath.Join(dir, "identity"), 0o755); err != nil {
		return fmt.Errorf("pod %s: %w", w.Key(), err)
	}
	if err := os.Chown(filepath.Join(dir, "identity"), ProxyUID, ProxyUID); err != nil {
		return fmt.Errorf("pod %s: %w", w.Key(), err)
	}
	cidr := netip.PrefixFrom(ip, s.Subnet.Bits()).String()
	for _, args := range [][]string{
		{"netns", "add", w.NetNS},
		{"-n", s.SwitchNS, "link", "add", w.HostVeth, "type", "veth", "peer", "name", "eth0", "netns", w.NetNS},
		{"-n", s.SwitchNS, "link", "set", w.HostVeth, "master", bridgeName, "up"},
		{"-n", w.NetNS, "link", "set", "lo", "up"},
		{"-n", w.NetNS, "addr", "add", cidr, "dev", "eth0"},
		{"-n", w.NetNS, "link", "set", "eth0", "up"},
		// Virtual cluster IPs go out eth0, so that connect() succeeds
		// and iptables hands the connection to the proxy.
		{"-n", w.NetNS, "route", "add", s.ServiceCIDR.String(), "dev", "eth0"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return fmt.Errorf("pod %s: %w", w.Key(), err)
		}
	}
	initArgs := []string{"--net=" + NetNSPath(w.NetNS), "--", m.bin("linkerd-init"),
		"--incoming-proxy-port", "4143", "--outgoing-proxy-port", "4140",
		"--proxy-uid", strconv.Itoa(ProxyUID), "--inbound-ports-to-ignore", "4190,4191", "--log-level", "warn"}
	if len(w.SkipOutboundPorts) > 0 {
		ports := make([]string, len(w.SkipOutboundPorts))
		for i, p := range w.SkipOutboundPorts {
			ports[i] = strconv.Itoa(p)
		}
		initArgs = append(initArgs, "--outbound-ports-to-ignore", strings.Join(ports, ","))
	}
	if err := run(ctx, "nsenter", initArgs...); err != nil {
		return fmt.Errorf("pod %s: linkerd-init: %w", w.Key(), err)
	}

	token, err := m.issueToken(w.ServiceAccount, w.Namespace)
	if err != nil {
		return err
	}
	if identityAddr == "" {
		idw := s.workload(ControlPlaneNamespace, identityName)
		if idw == nil {
			return errors.New("no identity pod in state")
		}
		identityAddr = fmt.Sprintf("%s:%d", idw.IP, identityPort)
	}
	env := []string{
		proxyenv.Log + "=warn,linkerd=info",
		proxyenv.IdentitySvcAddr + "=" + identityAddr,
		proxyenv.IdentitySvcName + "=" + identityOf(identityName, ControlPlaneNamespace),
		proxyenv.IdentityLocalName + "=" + w.Identity,
		proxyenv.IdentityTokenFile + "=" + token,
		proxyenv.IdentityTrustAnchors + "=" + anchors,
		proxyenv.IdentityDir + "=" + filepath.Join(dir, "identity"),
		// Tap enabled for the tap service's identity (the CLI holds it: TapTLS).
		proxyenv.TapSvcName + "=" + TapIdentity,
	}
	if discovery {
		dw := s.workload(ControlPlaneNamespace, destName)
		if dw == nil {
			return errors.New("no destination pod in state")
		}
		env = append(env,
			fmt.Sprintf("%s=%s:%d", proxyenv.DestinationSvcAddr, dw.IP, k8s.DestinationGRPCPort),
			proxyenv.DestinationSvcName+"="+identityOf(destName, ControlPlaneNamespace),
			fmt.Sprintf(`%s={"ns":%q,"pod":%q}`, proxyenv.DestinationContext, w.Namespace, w.Name),
			fmt.Sprintf("%s=%s:%d", proxyenv.PolicySvcAddr, dw.IP, k8s.PolicyGRPCPort),
			proxyenv.PolicySvcName+"="+identityOf(destName, ControlPlaneNamespace),
			fmt.Sprintf(`%s={"ns":%q,"pod":%q}`, proxyenv.PolicyWorkload, w.Namespace, w.Name),
		)
	}
	proxy := &Proc{Role: roleProxy, Env: env, Log: filepath.Join(dir, "proxy.log"), Args: []string{"nsenter", "--net=" + NetNSPath(w.NetNS),
		"--setgid", strconv.Itoa(ProxyUID), "--setuid", strconv.Itoa(ProxyUID), "--", m.bin("linkerd-proxy")}}
	// Apps that the proxy depends on (identity) start first.
	for _, p := range apps {
		if p.Log == "" {
			p.Log = filepath.Join(dir, p.Role+".log")
		}
		// The supervisor stays on the host: it enters the pod's
		// namespace to start the application.
		if p.Args[0] != "nsenter" && p.Role != roleSupervisor {
			p.Args = append([]string{"nsenter", "--net=" + NetNSPath(w.NetNS), "--"}, p.Args...)
		}
	}
	if w.App != nil && w.App.Args[0] != "nsenter" {
		w.App.Args = append([]string{"nsenter", "--net=" + NetNSPath(w.NetNS), "--"}, w.App.Args...)
	}
	w.Procs = append(w.Procs, proxy)
	w.Procs = append(w.Procs, apps...)
	order := append(append([]*Proc{}, apps...), proxy)
	if !w.ControlPlane {
		order = append([]*Proc{proxy}, apps...)
	}
	for _, p := range order {
		if err := start(p); err != nil {
			return fmt.Errorf("pod %s: %w", w.Key(), err)
		}
		if err := saveState(m.statePath(), s); err != nil {
			return err
		}
		if p == proxy {
			if err := waitReady(ctx, w, proxy); err != nil {
				return err
			}
		}
	}
	// An app that fails at once (bad flags, missing file) is reported now
	// rather than left as a dead pod.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(appSettle):
	}
	for _, p := range apps {
		if !alive(p) {
			return fmt.Errorf("pod %s: %s exited at once: %s", w.Key(), p.Role, logTail(p.Log, 3))
		}
	}
	return nil
}

// issueToken writes a local token for sa in ns and returns its path.
func (m *Mesh) issueToken(sa, ns string) (string, error) {
	key, err := localtoken.LoadKey(m.path("identity", "token.key"))
	if err != nil {
		return "", fmt.Errorf("load token key: %w", err)
	}
	iss := &localtoken.Issuer{Key: key, ControllerNamespace: ControlPlaneNamespace, TrustDomain: TrustDomain}
	tok, err := iss.Issue(sa, ns, tokenLifetime)
	if err != nil {
		return "", fmt.Errorf("issue token for %s.%s: %w", sa, ns, err)
	}
	path := m.path("tokens", sa+"."+ns)
	if err := writeFileAtomic(path, tok, 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// waitReady waits until the proxy of w answers ready on its admin port.
func waitReady(ctx context.Context, w *Workload, proxy *Proc) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		ready, err := proxyReady(ctx, w)
		if ready {
			return nil
		}
		last = err
		if !alive(proxy) {
			return fmt.Errorf("pod %s: the proxy exited: %s", w.Key(), logTail(proxy.Log, 3))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s: proxy not ready after %v: %v; its log ends: %s", w.Key(), readyTimeout, last, logTail(proxy.Log, 3))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// proxyReady asks the proxy's admin server of w for /ready.
func proxyReady(ctx context.Context, w *Workload) (bool, error) {
	code, body, err := get(ctx, w.NetNS, fmt.Sprintf("http://%s/ready", netip.AddrPortFrom(w.IP, proxyAdmin)))
	if err != nil {
		return false, err
	}
	if code != 200 {
		return false, fmt.Errorf("/ready: %d %s", code, strings.TrimSpace(body))
	}
	return true, nil
}

// logTail returns the last n lines of the log at path, joined with " | ",
// for error messages that outlive the log (a failed up removes the state).
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "(empty log)"
	}
	return strings.Join(lines, " | ")
}
