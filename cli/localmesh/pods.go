package localmesh

import (
	"net/netip"
	"path/filepath"
	"sort"
)

// InboundPort is the pods' proxy inbound port, where meshed peers connect
// with TLS.
const InboundPort = 4143

// Pod is a pod of a running local mesh, as the CLI's listings show it.
type Pod struct {
	Namespace, Name string
	IP              netip.Addr
	// Identity is its proxy's TLS identity.
	Identity string
	// TapEnabled: its proxy serves the tap API.
	TapEnabled bool
	// ControlPlane marks the mesh's own pods (control plane, viz).
	ControlPlane bool
	Labels       map[string]string
}

// Pods returns the pods of the mesh at stateDir that run, in namespace ns
// ("" for every namespace), sorted by namespace and name; ErrNotUp when no
// mesh is up there.
func Pods(stateDir, ns string) ([]Pod, error) {
	s, err := loadState(filepath.Join(stateDir, "state.json"))
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, ErrNotUp
	}
	var pods []Pod
	for _, w := range s.Workloads {
		if (ns != "" && w.Namespace != ns) || len(w.Procs) == 0 {
			continue
		}
		pods = append(pods, Pod{Namespace: w.Namespace, Name: w.Name, IP: w.IP, Identity: w.Identity,
			TapEnabled: tapEnabled(w), ControlPlane: w.ControlPlane, Labels: w.Labels})
	}
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
	return pods, nil
}
