package localmesh

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/linkerd-go/linkerd/viz/tap"
)

// The local mesh's tap service: viz's tap in its own pod of namespace
// linkerd-viz, with ServiceAccount tap, so that the identity service
// certifies it as TapIdentity, the only client the proxies' tap API serves
// (as on Kubernetes). It dials the proxies' tap port and the identity
// service directly: its pod skips its own proxy for those ports, as the
// chart's skip-outbound-ports does. It resolves resources to pods from the
// file the mesh keeps of them (like Prometheus's targets). The dashboard's
// web server streams its live calls from it.
const (
	vizTapName = "tap"
	// VizTapPort is the tap service's gRPC port in its pod.
	VizTapPort = 8088
)

// tapPodsPath is the file of pods the tap service resolves from.
func (m *Mesh) tapPodsPath() string { return m.path("tap", "pods.json") }

// addVizTap starts the tap service and returns its address (host:port).
func (m *Mesh) addVizTap(ctx context.Context, s *State, anchors string) (string, error) {
	idw := s.workload(ControlPlaneNamespace, identityName)
	if idw == nil {
		return "", fmt.Errorf("no identity pod in state")
	}
	token, err := m.issueToken(vizTapName, VizNamespace)
	if err != nil {
		return "", err
	}
	w := &Workload{Name: vizTapName, Namespace: VizNamespace, ServiceAccount: vizTapName, ControlPlane: true,
		SkipOutboundPorts: []int{TapPort, identityPort}}
	proc := &Proc{Role: "tap", Args: []string{m.bin("linkerd-controller"), "tap",
		"-addr", fmt.Sprintf(":%d", VizTapPort), "-admin-addr", ":9998",
		"-pods-file", m.tapPodsPath(),
		"-controller-namespace", ControlPlaneNamespace, "-trust-domain", TrustDomain,
		"-identity-addr", net.JoinHostPort(idw.IP.String(), strconv.Itoa(identityPort)),
		"-identity-local-name", TapIdentity, "-token-file", token,
		"-trust-anchors", m.path("identity", "ca-bundle.crt"),
		"-tap-port", strconv.Itoa(TapPort),
	}}
	if err := m.writeTapPods(s); err != nil {
		return "", err
	}
	if err := m.addPod(ctx, s, w, anchors, "", false, proc); err != nil {
		return "", err
	}
	m.logf("tap service %s:%d", w.IP, VizTapPort)
	return net.JoinHostPort(w.IP.String(), strconv.Itoa(VizTapPort)), nil
}

// writeTapPods writes the pods the tap service may tap.
func (m *Mesh) writeTapPods(s *State) error {
	pods := []tap.FilePod{}
	for _, w := range s.Workloads {
		if !w.IP.IsValid() || len(w.Procs) == 0 {
			continue
		}
		pods = append(pods, tap.FilePod{Namespace: w.Namespace, Name: w.Name, Deployment: w.Name,
			Addr: net.JoinHostPort(w.IP.String(), strconv.Itoa(TapPort)), Identity: w.Identity, TapEnabled: tapEnabled(w)})
	}
	b, err := json.MarshalIndent(pods, "", "  ")
	if err != nil {
		return fmt.Errorf("tap pods: %w", err)
	}
	if err := os.MkdirAll(m.path("tap"), 0o755); err != nil {
		return fmt.Errorf("tap pods: %w", err)
	}
	return writeFileAtomic(m.tapPodsPath(), b, 0o644)
}
