package localmesh

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
)

// State is what the local mesh records in its state file: the network, the
// workloads (the control plane's pods included) and their processes.
type State struct {
	// Prefix starts every namespace name of this mesh.
	Prefix string `json:"prefix"`
	// SwitchNS is the network namespace holding the bridge.
	SwitchNS string `json:"switchNS"`
	// Subnet is the pods' subnet.
	Subnet netip.Prefix `json:"subnet"`
	// ServiceCIDR is the range virtual cluster IPs are allocated from.
	ServiceCIDR netip.Prefix `json:"serviceCIDR"`
	// NextVeth numbers the bridge-side veth devices.
	NextVeth int `json:"nextVeth"`
	// Services maps "namespace/name" to the Service's cluster IP.
	Services map[string]netip.Addr `json:"services"`
	// Workloads are the pods, in creation order.
	Workloads []*Workload `json:"workloads"`
	// Version is the version of the linkerd that brought the mesh up: the
	// control plane's (its binaries come from the same build).
	Version string `json:"version,omitempty"`
}

// Workload is one pod of the local mesh: a network namespace with a proxy
// and an application.
type Workload struct {
	Name           string `json:"name"`
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	// Service is the Service the workload is an endpoint of; empty for
	// none.
	Service string `json:"service,omitempty"`
	// Port is the application's first port (the Service's port and
	// targetPort).
	Port int `json:"port,omitempty"`
	// Ports are all the application's ports, Port first; each is a port
	// of the Service. Empty in states from before it: Port alone.
	Ports []int `json:"ports,omitempty"`
	// Labels are the Pod's labels (app=<service> unless RunSpec.Labels
	// says otherwise).
	Labels map[string]string `json:"labels,omitempty"`
	// ControlPlane marks the control plane's own pods.
	ControlPlane bool `json:"controlPlane,omitempty"`
	// SkipOutboundPorts are ports the pod's processes dial around its
	// proxy (linkerd-init's --outbound-ports-to-ignore).
	SkipOutboundPorts []int `json:"skipOutboundPorts,omitempty"`
	// NetNS is the name of the pod's network namespace.
	NetNS string `json:"netns"`
	// HostVeth is the bridge side of the pod's eth0.
	HostVeth string `json:"hostVeth"`
	// IP is the pod's address.
	IP netip.Addr `json:"ip"`
	// Identity is the proxy's TLS identity.
	Identity string `json:"identity"`
	// Procs are the pod's processes: the proxy first.
	Procs []*Proc `json:"procs"`
	// App is the application of a workload started by Run: its command,
	// environment and log. It is run and restarted by the pod's
	// supervisor (one of Procs), which reports its process and readiness
	// in the pod's app status file, not here.
	App *Proc `json:"app,omitempty"`
}

// Key returns "namespace/name".
func (w *Workload) Key() string { return w.Namespace + "/" + w.Name }

// Proc is a process the mesh started, with what is needed to restart it.
type Proc struct {
	// Role names the process within its pod ("proxy", "app", "identity").
	Role string `json:"role"`
	// Args is the full command line, nsenter included.
	Args []string `json:"args"`
	// Env is added to the CLI's environment.
	Env []string `json:"env,omitempty"`
	// Log is the file receiving stdout and stderr.
	Log string `json:"log"`
	// PID and StartTime (clock ticks after boot, /proc/PID/stat field 22)
	// identify the running process.
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
}

// NamePrefix returns the prefix of the network namespace names of the mesh
// whose state is in stateDir.
func NamePrefix(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	return namePrefix(abs)
}

// namePrefix returns the namespace name prefix for a state directory: the
// default directory gets "l5dl-", others a prefix derived from their path so
// that meshes with different state directories do not collide.
func namePrefix(stateDir string) string {
	if filepath.Clean(stateDir) == DefaultStateDir {
		return "l5dl-"
	}
	sum := sha256.Sum256([]byte(filepath.Clean(stateDir)))
	return "l5dl" + hex.EncodeToString(sum[:2]) + "-"
}

// workload returns the workload ns/name, or nil.
func (s *State) workload(ns, name string) *Workload {
	for _, w := range s.Workloads {
		if w.Namespace == ns && w.Name == name {
			return w
		}
	}
	return nil
}

// allocatePodIP returns the lowest free host address of the subnet,
// skipping the network and first addresses and the broadcast address.
func (s *State) allocatePodIP() (netip.Addr, error) {
	used := map[netip.Addr]bool{}
	for _, w := range s.Workloads {
		used[w.IP] = true
	}
	return firstFree(s.Subnet, 2, used)
}

// allocateServiceIP returns the cluster IP of Service ns/name, allocating
// one if the Service is new, away from the addresses in taken (the cluster
// IPs of Services applied to the store). It reports whether it allocated.
func (s *State) allocateServiceIP(ns, name string, taken map[netip.Addr]bool) (netip.Addr, bool, error) {
	key := ns + "/" + name
	if ip, ok := s.Services[key]; ok {
		return ip, false, nil
	}
	used := map[netip.Addr]bool{}
	for ip := range taken {
		used[ip] = true
	}
	for _, ip := range s.Services {
		used[ip] = true
	}
	// .1 to .9 are left free, as a cluster's kubernetes and DNS Services.
	ip, err := firstFree(s.ServiceCIDR, 10, used)
	if err != nil {
		return netip.Addr{}, false, err
	}
	if s.Services == nil {
		s.Services = map[string]netip.Addr{}
	}
	s.Services[key] = ip
	return ip, true, nil
}

// firstFree returns the first address of p, from offset skip, that is not
// used and is not p's broadcast address.
func firstFree(p netip.Prefix, skip int, used map[netip.Addr]bool) (netip.Addr, error) {
	p = p.Masked()
	ip := p.Addr()
	for range skip {
		ip = ip.Next()
	}
	for ; p.Contains(ip); ip = ip.Next() {
		if !p.Contains(ip.Next()) { // broadcast
			break
		}
		if !used[ip] {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address left in %s", p)
}

// serviceNames returns the sorted "namespace/name" keys of the Services.
func (s *State) serviceNames() []string {
	keys := make([]string, 0, len(s.Services))
	for k := range s.Services {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// loadState reads the state file; it returns nil, nil when there is none.
func loadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse state %s: %w", path, err)
	}
	return &s, nil
}

// saveState writes the state file atomically.
func saveState(path string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeFileAtomic(path, append(b, '\n'), 0o644)
}

// writeFileAtomic writes path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// AppPorts returns the application's ports, each a port of its Service.
func (w *Workload) AppPorts() []int {
	if len(w.Ports) > 0 {
		return w.Ports
	}
	if w.Port > 0 {
		return []int{w.Port}
	}
	return nil
}
