package localmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/linkerd-go/linkerd/controller/store"
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
	// Command is the application and its arguments.
	Command []string
}

// Run starts a meshed workload: a pod namespace with linkerd-init's rules,
// a proxy with an identity and discovery, and the command inside with the
// mesh's hosts file as /etc/hosts. The Service (with a cluster IP), the Pod
// and the EndpointSlice go to the store. On failure the pod is removed.
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
	if spec.Port < 0 || spec.Port > 65535 {
		return nil, fmt.Errorf("invalid port %d", spec.Port)
	}
	if len(spec.Command) == 0 {
		return nil, errors.New("no command to run")
	}
	cmdPath := spec.Command[0]
	if strings.Contains(cmdPath, "/") {
		abs, err := filepath.Abs(cmdPath)
		if err != nil {
			return nil, fmt.Errorf("command: %w", err)
		}
		cmdPath = abs
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
	w := &Workload{Name: spec.Name, Namespace: spec.Namespace, ServiceAccount: spec.ServiceAccount, Port: spec.Port}
	newService := false
	if spec.Port > 0 {
		w.Service = spec.Service
		if _, newService, err = s.allocateServiceIP(spec.Namespace, spec.Service); err != nil {
			return nil, err
		}
	}
	hosts := filepath.Join(m.podDir(w), "hosts")
	app := &Proc{Role: "app", Args: append([]string{
		"unshare", "--mount", "--propagation", "private",
		"sh", "-c", `mount --bind "$1" /etc/hosts && shift && exec "$@"`, "sh", hosts, cmdPath,
	}, spec.Command[1:]...)}
	err = m.addPodWithHosts(ctx, s, w, string(anchors), app)
	if err == nil {
		err = m.publish(s)
	}
	if err != nil {
		rerr := m.removeWorkload(ctx, s, w)
		if newService {
			delete(s.Services, spec.Namespace+"/"+spec.Service)
		}
		if serr := saveState(m.statePath(), s); serr != nil && rerr == nil {
			rerr = serr
		}
		if rerr != nil {
			return nil, fmt.Errorf("%w (and removing the pod: %w)", err, rerr)
		}
		return nil, err
	}
	m.logf("workload %s: pod %s, identity %s", w.Key(), w.IP, w.Identity)
	if w.Service != "" {
		m.logf("service %s.%s.svc.%s -> %s:%d", w.Service, w.Namespace, ClusterDomain, s.Services[w.Namespace+"/"+w.Service], w.Port)
	}
	return w, nil
}

// addPodWithHosts writes the pod's hosts file before addPod starts its
// processes.
func (m *Mesh) addPodWithHosts(ctx context.Context, s *State, w *Workload, anchors string, app *Proc) error {
	if err := os.MkdirAll(m.podDir(w), 0o755); err != nil {
		return fmt.Errorf("pod %s: %w", w.Key(), err)
	}
	if err := writeHosts(filepath.Join(m.podDir(w), "hosts"), hostsFile(w.Namespace, w.Name, w.IP, s.Services, ClusterDomain)); err != nil {
		return err
	}
	return m.addPod(ctx, s, w, anchors, "", true, app)
}

// publish saves the state and regenerates the store and every pod's hosts
// file from it.
func (m *Mesh) publish(s *State) error {
	if err := saveState(m.statePath(), s); err != nil {
		return err
	}
	if err := writeStore(m.StoreDir(), s, ControlPlaneNamespace); err != nil {
		return err
	}
	if err := m.writeTargets(s); err != nil {
		return err
	}
	for _, w := range s.Workloads {
		if w.ControlPlane {
			continue
		}
		if err := writeHosts(filepath.Join(m.podDir(w), "hosts"), hostsFile(w.Namespace, w.Name, w.IP, s.Services, ClusterDomain)); err != nil {
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
	s.Workloads = slices.DeleteFunc(s.Workloads, func(x *Workload) bool { return x == w })
	return errors.Join(errs...)
}

// Apply copies a Kubernetes manifest into the store, where destination
// picks it up; name is the file's name in the store (without directory).
func (m *Mesh) Apply(name string, manifest io.Reader) (string, error) {
	if err := CheckPrivileges(); err != nil {
		return "", err
	}
	if _, err := m.load(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(manifest, 16<<20))
	if err != nil {
		return "", fmt.Errorf("read manifest: %w", err)
	}
	// As the API server would, refuse what destination could not read.
	if _, err := store.DecodeObjects(b); err != nil {
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
	return dst, nil
}

// WorkloadStatus is a workload with what Status observed of it.
type WorkloadStatus struct {
	*Workload
	// ProxyReady is whether the proxy's admin server answered /ready.
	ProxyReady bool
	// Running lists the roles of the processes that are alive.
	Running []string
	// Dead lists the roles of the processes that are not.
	Dead []string
	// ClusterIP is the workload's Service's cluster IP, if any.
	ClusterIP string
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
		st := WorkloadStatus{Workload: w}
		for _, p := range w.Procs {
			if alive(p) {
				st.Running = append(st.Running, p.Role)
			} else {
				st.Dead = append(st.Dead, p.Role)
			}
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
