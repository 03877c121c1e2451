package localmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	controllerpolicy "github.com/linkerd-go/linkerd/controller/policy"
	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	spv1alpha2 "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
	"github.com/linkerd-go/linkerd/pkg/apis/split"
)

// RunSpec describes a workload for Run.
type RunSpec struct {
	// Name is the pod's name, unique in its namespace.
	Name string
	// Namespace is the pod's namespace.
	Namespace string
	// ServiceAccount names the workload's identity; empty means Name.
	ServiceAccount string
	// Service is the Service the pod backs; empty means Name.
	Service string
	// Port is the application's port, exposed by the Service; 0 means no
	// Service.
	Port int
	// Ports are more ports of the application, each a port of the Service
	// too (after Port, when set).
	Ports []int
	// Command is the application and its arguments.
	Command []string
	// Env is the application's environment besides PATH ("K=V"); it does
	// not inherit the CLI's, as a container does not inherit the node's.
	Env []string
	// Labels are the Pod's labels; app defaults to the Service's name.
	Labels map[string]string
}

// Run starts a meshed workload: a pod namespace with linkerd-init's rules,
// a proxy with an identity and discovery, and the command inside, with the
// mesh's hosts file as /etc/hosts, run and restarted by the pod's supervisor.
// The Service (with a cluster IP), the Pod and the EndpointSlice go to the
// store. Run returns once the application listens on its port (or, without
// a port, has kept running for a moment); on failure the pod is removed.
func (m *Mesh) Run(ctx context.Context, spec RunSpec) (*Workload, error) {
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	if spec.ServiceAccount == "" {
		spec.ServiceAccount = spec.Name
	}
	if spec.Service == "" {
		spec.Service = spec.Name
	}
	for _, n := range []struct{ what, v string }{{"name", spec.Name}, {"namespace", spec.Namespace}, {"service account", spec.ServiceAccount}, {"service", spec.Service}} {
		if !nameRE.MatchString(n.v) {
			return nil, fmt.Errorf("invalid %s %q: want lowercase letters, digits and dashes, at most 32 characters", n.what, n.v)
		}
	}
	if spec.Namespace == ControlPlaneNamespace {
		return nil, fmt.Errorf("namespace %q is the control plane's", spec.Namespace)
	}
	var ports []int
	for _, p := range append([]int{spec.Port}, spec.Ports...) {
		if p < 0 || p > 65535 || (p == 0 && len(ports) > 0) {
			return nil, fmt.Errorf("invalid port %d", p)
		}
		if p > 0 && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	if len(spec.Command) == 0 {
		return nil, errors.New("no command to run")
	}
	for _, kv := range spec.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.ContainsAny(k, " \t\n") {
			return nil, fmt.Errorf("invalid environment variable %q: want NAME=VALUE", kv)
		}
	}
	labels := map[string]string{"app": spec.Service}
	for k, v := range spec.Labels {
		if !labelKeyRE.MatchString(k) || !labelValueRE.MatchString(v) {
			return nil, fmt.Errorf("invalid label %s=%s: want a Kubernetes label key and value", k, v)
		}
		labels[k] = v
	}
	if len(m.cfg.Supervisor) == 0 {
		return nil, errors.New("no supervisor command configured (Config.Supervisor)")
	}
	cmdPath := spec.Command[0]
	if strings.Contains(cmdPath, "/") {
		abs, err := filepath.Abs(cmdPath)
		if err != nil {
			return nil, fmt.Errorf("command: %w", err)
		}
		cmdPath = abs
		if fi, err := os.Stat(cmdPath); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("command %s: not an executable file", spec.Command[0])
		}
	} else if p, err := exec.LookPath(cmdPath); err == nil {
		cmdPath = p
	} else {
		return nil, fmt.Errorf("command: %w", err)
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	s, err := m.load()
	if err != nil {
		return nil, err
	}
	if s.workload(spec.Namespace, spec.Name) != nil {
		return nil, fmt.Errorf("workload %s/%s already exists", spec.Namespace, spec.Name)
	}
	anchors, err := os.ReadFile(m.path("identity", "ca-bundle.crt"))
	if err != nil {
		return nil, fmt.Errorf("read trust anchors: %w", err)
	}
	w := &Workload{Name: spec.Name, Namespace: spec.Namespace, ServiceAccount: spec.ServiceAccount, Labels: labels}
	if len(ports) > 0 {
		w.Port, w.Ports = ports[0], ports
	}
	newService := false
	if len(ports) > 0 {
		w.Service = spec.Service
		applied, err := storeServices(m.StoreDir())
		if err != nil {
			return nil, err
		}
		taken := map[netip.Addr]bool{}
		for _, ip := range applied {
			taken[ip] = true
		}
		if _, newService, err = s.allocateServiceIP(spec.Namespace, spec.Service, taken); err != nil {
			return nil, err
		}
	}
	dir := m.podDir(w)
	w.App = &Proc{Role: roleApp, Log: filepath.Join(dir, "app.log"), Env: appEnv(spec.Env), Args: append([]string{
		"unshare", "--mount", "--propagation", "private",
		"sh", "-c", `mount --bind "$1" /etc/hosts && shift && exec "$@"`, "sh", filepath.Join(dir, "hosts"), cmdPath,
	}, spec.Command[1:]...)}
	sup := &Proc{Role: roleSupervisor, Log: filepath.Join(dir, "supervisor.log"), Args: append(append([]string{}, m.cfg.Supervisor...),
		"--state-dir", m.cfg.StateDir, "--bin-dir", m.cfg.BinDir, "--pod", w.Key())}
	err = m.addPodWithHosts(ctx, s, w, string(anchors), sup)
	if err == nil {
		err = m.waitApp(ctx, w, sup)
	}
	if err == nil {
		err = m.publish(ctx)
	}
	if err != nil {
		rerr := m.removeWorkload(context.WithoutCancel(ctx), s, w)
		if newService {
			delete(s.Services, spec.Namespace+"/"+spec.Service)
		}
		if serr := saveState(m.statePath(), s); serr != nil && rerr == nil {
			rerr = serr
		}
		if perr := m.publish(context.WithoutCancel(ctx)); perr != nil && rerr == nil {
			rerr = perr
		}
		if derr := os.RemoveAll(dir); derr != nil && rerr == nil {
			rerr = derr
		}
		if rerr != nil {
			return nil, fmt.Errorf("%w (and removing the pod: %w)", err, rerr)
		}
		return nil, err
	}
	m.logf("workload %s: pod %s, identity %s", w.Key(), w.IP, w.Identity)
	if w.Service != "" {
		m.logf("service %s.%s.svc.%s -> %s:%s", w.Service, w.Namespace, ClusterDomain, s.Services[w.Namespace+"/"+w.Service], joinPorts(w.AppPorts()))
	}
	return w, nil
}

// addPodWithHosts writes the pod's hosts file before addPod starts its
// processes.
func (m *Mesh) addPodWithHosts(ctx context.Context, s *State, w *Workload, anchors string, app *Proc) error {
	if err := os.MkdirAll(m.podDir(w), 0o755); err != nil {
		return fmt.Errorf("pod %s: %w", w.Key(), err)
	}
	svcs, err := storeServices(m.StoreDir())
	if err != nil {
		return err
	}
	maps.Copy(svcs, s.Services)
	if err := writeHosts(filepath.Join(m.podDir(w), "hosts"), hostsFile(w.Namespace, w.Name, w.IP, svcs, ClusterDomain)); err != nil {
		return err
	}
	return m.addPod(ctx, s, w, anchors, "", true, app)
}

// waitApp waits until the supervisor reports w's application ready, and
// fails if the application exits first, or does not get ready within
// readyTimeout.
func (m *Mesh) waitApp(ctx context.Context, w *Workload, sup *Proc) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		st, err := readAppStatus(m.appStatusPath(w))
		if err == nil && st.LastExit != "" {
			return fmt.Errorf("pod %s: the application exited (%s): %s", w.Key(), st.LastExit, logTail(w.App.Log, 3))
		}
		if err == nil && st.Ready {
			return nil
		}
		if !alive(sup) {
			return fmt.Errorf("pod %s: the supervisor exited: %s", w.Key(), logTail(sup.Log, 3))
		}
		select {
		case <-ctx.Done():
			if len(w.AppPorts()) > 0 {
				return fmt.Errorf("pod %s: the application does not listen on port %s after %v; its log ends: %s", w.Key(), joinPorts(w.AppPorts()), readyTimeout, logTail(w.App.Log, 3))
			}
			return fmt.Errorf("pod %s: the application did not start: %w", w.Key(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// publish regenerates, from the saved state and the applications'
// readiness, the mesh's files in the store, every pod's hosts file (from
// every Service in the store, applied ones included) and Prometheus's
// targets. Callers save the state first. Run, Apply and the supervisors
// publish; the store lock serializes them.
func (m *Mesh) publish(ctx context.Context) error {
	unlock, err := m.lockStore(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := m.load()
	if err != nil {
		return err
	}
	ready := func(w *Workload) bool {
		st, err := readAppStatus(m.appStatusPath(w))
		return err == nil && st.Ready && st.Running()
	}
	if err := writeStore(m.StoreDir(), s, ControlPlaneNamespace, ready); err != nil {
		return err
	}
	if err := m.writeTargets(s); err != nil {
		return err
	}
	svcs, err := storeServices(m.StoreDir())
	if err != nil {
		return err
	}
	for _, w := range s.Workloads {
		if w.ControlPlane {
			continue
		}
		if err := writeHosts(filepath.Join(m.podDir(w), "hosts"), hostsFile(w.Namespace, w.Name, w.IP, svcs, ClusterDomain)); err != nil {
			return err
		}
	}
	return nil
}

// removeWorkload stops w's processes, deletes its namespace and drops it
// from s (the caller saves s).
func (m *Mesh) removeWorkload(ctx context.Context, s *State, w *Workload) error {
	var errs []error
	for _, p := range slices.Backward(w.Procs) {
		if err := stop(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if w.NetNS != "" && netnsExists(w.NetNS) {
		if err := run(ctx, "ip", "netns", "del", w.NetNS); err != nil {
			errs = append(errs, err)
		}
	}
	// The supervisor stops its application; one that outlived it (the
	// supervisor was killed) is stopped here.
	if w.App != nil {
		if st, err := readAppStatus(m.appStatusPath(w)); err == nil {
			if err := stop(ctx, &Proc{Role: roleApp, PID: st.PID, StartTime: st.StartTime}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.Workloads = slices.DeleteFunc(s.Workloads, func(x *Workload) bool { return x == w })
	return errors.Join(errs...)
}

// Apply copies a Kubernetes manifest into the store, where destination
// picks it up within a poll; name is the file's name in the store (without
// directory; applying the same name again replaces it). As the API server
// would, it refuses what destination could not read and gives Services
// without a cluster IP one. Every pod's hosts file is rewritten, so that
// applied Services resolve by name at once.
func (m *Mesh) Apply(ctx context.Context, name string, manifest io.Reader) (string, error) {
	if err := CheckPrivileges(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(manifest, 16<<20))
	if err != nil {
		return "", fmt.Errorf("read manifest: %w", err)
	}
	dec, err := store.DecodeObjects(b)
	if err != nil {
		return "", fmt.Errorf("invalid manifest %s: %w", name, err)
	}
	if err := checkSplitsStrict(b); err != nil {
		return "", fmt.Errorf("invalid manifest %s: %w", name, err)
	}
	for _, obj := range dec.Objects {
		switch o := obj.(type) {
		case *spv1alpha2.ServiceProfile:
			// The sp-validator's checks, as the cluster's webhook would.
			if err := spv1alpha2.Validate(o); err != nil {
				return "", fmt.Errorf("invalid manifest %s: ServiceProfile %s/%s: %w", name, o.Namespace, o.Name, err)
			}
		case *split.TrafficSplit:
			if err := o.Validate(); err != nil {
				return "", fmt.Errorf("invalid manifest %s: TrafficSplit %s/%s: %w", name, o.Namespace, o.Name, err)
			}
		case *policy.HTTPRoute:
			// The policy-validator's checks.
			if err := o.Validate(); err != nil {
				return "", fmt.Errorf("invalid manifest %s: HTTPRoute %s/%s: %w", name, o.Namespace, o.Name, err)
			}
		}
	}
	if err := checkServiceAnnotations(dec.Objects); err != nil {
		return "", fmt.Errorf("invalid manifest %s: %w", name, err)
	}
	// The policy-validator's checks, as the cluster's webhook would.
	if _, err := controllerpolicy.DecodeAll(b); err != nil {
		return "", fmt.Errorf("invalid manifest %s: %w", name, err)
	}
	// Serialized with Run, which allocates cluster IPs too.
	unlock, err := m.lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	s, err := m.load()
	if err != nil {
		return "", err
	}
	existing, err := storeServices(m.StoreDir())
	if err != nil {
		return "", err
	}
	maps.Copy(existing, s.Services)
	used := map[netip.Addr]bool{}
	for _, ip := range existing {
		used[ip] = true
	}
	b, err = assignClusterIPs(b, s.ServiceCIDR, existing, func(string) (netip.Addr, error) {
		// .1 to .9 are left free, as in allocateServiceIP.
		ip, err := firstFree(s.ServiceCIDR, 10, used)
		used[ip] = true
		return ip, err
	})
	if err != nil {
		return "", fmt.Errorf("invalid manifest %s: %w", name, err)
	}
	base := filepath.Base(name)
	if base == "." || base == "/" || base == "-" || base == "" {
		base = "stdin.yaml"
	}
	if ext := filepath.Ext(base); ext != ".yaml" && ext != ".yml" {
		base += ".yaml"
	}
	dst := filepath.Join(m.StoreDir(), appliedPrefix+base)
	if err := writeFileAtomic(dst, b, 0o644); err != nil {
		return "", err
	}
	if err := m.publish(ctx); err != nil {
		return "", err
	}
	return dst, nil
}

// WorkloadStatus is a workload with what Status observed of it.
type WorkloadStatus struct {
	*Workload
	// ProxyReady is whether the proxy's admin server answered /ready.
	ProxyReady bool
	// Running lists the roles of the processes that are alive ("proxy",
	// "supervisor", "app", the control plane's).
	Running []string
	// Dead lists the roles of the processes that are not.
	Dead []string
	// ClusterIP is the workload's Service's cluster IP, if any.
	ClusterIP string
	// App is what the supervisor reports of the application (workloads
	// started by Run).
	App AppStatus
	// PIDs maps the roles of the running processes to their pids.
	PIDs map[string]int
}

// Status reports every workload, the control plane's included.
func (m *Mesh) Status(ctx context.Context) ([]WorkloadStatus, error) {
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	s, err := m.load()
	if err != nil {
		return nil, err
	}
	out := make([]WorkloadStatus, 0, len(s.Workloads))
	for _, w := range s.Workloads {
		st := WorkloadStatus{Workload: w, PIDs: map[string]int{}}
		note := func(role string, pid int, ok bool) {
			if ok {
				st.Running = append(st.Running, role)
				st.PIDs[role] = pid
			} else {
				st.Dead = append(st.Dead, role)
			}
		}
		for _, p := range w.Procs {
			note(p.Role, p.PID, alive(p))
		}
		if w.App != nil {
			st.App, _ = readAppStatus(m.appStatusPath(w))
			note(roleApp, st.App.PID, st.App.Running())
			st.App.Ready = st.App.Ready && st.App.Running()
		}
		if netnsExists(w.NetNS) {
			st.ProxyReady, _ = proxyReady(ctx, w)
		}
		if w.Service != "" {
			st.ClusterIP = s.Services[w.Namespace+"/"+w.Service].String()
		}
		out = append(out, st)
	}
	return out, nil
}

// Down stops every process of the mesh, deletes its namespaces (and with
// them their iptables rules) and removes the state directory. It also
// removes namespaces of this mesh that the state does not know about.
func (m *Mesh) Down(ctx context.Context) error {
	if err := CheckPrivileges(); err != nil {
		return err
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	err = m.down(ctx)
	if err == nil {
		_ = os.Remove(filepath.Clean(m.cfg.StateDir) + ".lock")
	}
	return err
}

func (m *Mesh) down(ctx context.Context) error {
	s, err := loadState(m.statePath())
	if err != nil {
		return err
	}
	var errs []error
	prefix := namePrefix(m.cfg.StateDir)
	if s != nil {
		prefix = s.Prefix
		for _, w := range slices.Backward(s.Workloads) {
			if err := m.removeWorkload(ctx, s, w); err != nil {
				errs = append(errs, err)
			}
		}
	}
	names, err := ListNetNS(prefix)
	if err != nil {
		errs = append(errs, err)
	}
	// Pods first, the switch last.
	slices.SortFunc(names, func(a, b string) int {
		return boolInt(strings.HasSuffix(a, "-switch")) - boolInt(strings.HasSuffix(b, "-switch"))
	})
	for _, n := range names {
		if err := run(ctx, "ip", "netns", "del", n); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		if s != nil {
			_ = saveState(m.statePath(), s)
		}
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(m.cfg.StateDir); err != nil {
		return fmt.Errorf("remove state: %w", err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// joinPorts formats ports as "8080,9090".
func joinPorts(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}
