package localmesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// The local mesh's dashboard: viz's web server in its own pod of namespace
// linkerd-viz, answering from the metrics API; `linkerd viz dashboard`
// forwards a local port to it.
const (
	vizWebName = "web"
	// VizWebPort is where the dashboard serves in its pod.
	VizWebPort = 8084
)

// addVizWeb starts the dashboard's web server, using the metrics API at
// metricsAPIAddr and the tap service at tapAddr (host:port).
func (m *Mesh) addVizWeb(ctx context.Context, s *State, anchors, metricsAPIAddr, tapAddr string) error {
	w := &Workload{Name: vizWebName, Namespace: VizNamespace, ServiceAccount: vizWebName, ControlPlane: true}
	proc := &Proc{Role: "web", Args: []string{m.bin("linkerd-controller"), "web",
		"-addr", fmt.Sprintf(":%d", VizWebPort), "-admin-addr", ":9994",
		"-metrics-api-addr", metricsAPIAddr, "-tap-addr", tapAddr,
	}}
	if err := m.addPod(ctx, s, w, anchors, "", false, proc); err != nil {
		return err
	}
	m.logf("dashboard http://%s (linkerd viz dashboard)", net.JoinHostPort(w.IP.String(), strconv.Itoa(VizWebPort)))
	return m.writeTargets(s)
}

// DashboardAddr returns the address (host:port) of the dashboard's web
// server of the mesh whose state is in stateDir; ErrNotUp when no mesh is
// up there.
func DashboardAddr(stateDir string) (string, error) {
	w, err := FindWorkload(stateDir, VizNamespace, vizWebName)
	if err != nil {
		if errors.Is(err, ErrNotUp) {
			return "", err
		}
		return "", fmt.Errorf("the local mesh at %s runs no dashboard (it needs Prometheus: apt install prometheus, then linkerd local down and up)", stateDir)
	}
	return net.JoinHostPort(w.IP.String(), strconv.Itoa(VizWebPort)), nil
}
