package localmesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// The local mesh's Prometheus: the Prometheus project's own server, in a pod
// of namespace linkerd-viz, scraping every proxy's admin port (as viz's
// Prometheus does in a cluster) with targets from a file this package keeps
// current.
const (
	VizNamespace   = "linkerd-viz"
	prometheusName = "prometheus"
	// PrometheusPort is where Prometheus serves its API and UI in its pod.
	PrometheusPort = 9090
	proxyAdminPort = 4191
)

// findPrometheus returns the prometheus binary, "" when it is not installed.
func findPrometheus() string {
	p, err := exec.LookPath("prometheus")
	if err != nil {
		return ""
	}
	return p
}

// addPrometheus starts Prometheus in its pod. Its outbound traffic goes
// through its proxy without discovery: the admin ports it scrapes are not
// meshed.
func (m *Mesh) addPrometheus(ctx context.Context, s *State, anchors, bin string) error {
	dir := m.path("prometheus")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return fmt.Errorf("prometheus: %w", err)
	}
	cfg := fmt.Sprintf(`# Written by linkerd local: scrape every proxy of the local mesh.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs:
- job_name: linkerd-proxy
  file_sd_configs:
  - files: [%q]
    refresh_interval: 5s
`, filepath.Join(dir, "targets.json"))
	if err := writeFileAtomic(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("prometheus: %w", err)
	}
	if err := m.writeTargets(s); err != nil {
		return err
	}
	w := &Workload{Name: prometheusName, Namespace: VizNamespace, ServiceAccount: prometheusName, ControlPlane: true}
	proc := &Proc{Role: "prometheus", Args: []string{bin,
		"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time=6h",
		"--web.listen-address=" + net.JoinHostPort("", strconv.Itoa(PrometheusPort)),
	}}
	if err := m.addPod(ctx, s, w, anchors, "", false, proc); err != nil {
		return err
	}
	m.logf("prometheus %s:%d scraping every proxy", w.IP, PrometheusPort)
	if err := m.writeTargets(s); err != nil {
		return err
	}
	return m.addMetricsAPI(ctx, s, anchors, w.IP.String())
}

// writeTargets lists every proxy's admin address with the labels viz's
// scrape configuration derives from pods (namespace, pod, deployment),
// and the pod's service account (serviceaccount).
func (m *Mesh) writeTargets(s *State) error {
	type group struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	groups := []group{}
	for _, w := range s.Workloads {
		if !w.IP.IsValid() {
			continue
		}
		labels := map[string]string{"namespace": w.Namespace, "pod": w.Name, "deployment": w.Name}
		if w.ServiceAccount != "" {
			labels["serviceaccount"] = w.ServiceAccount
		}
		groups = append(groups, group{
			Targets: []string{net.JoinHostPort(w.IP.String(), strconv.Itoa(proxyAdminPort))},
			Labels:  labels,
		})
	}
	b, err := json.MarshalIndent(groups, "", "  ")
	if err != nil {
		return fmt.Errorf("prometheus targets: %w", err)
	}
	if err := os.MkdirAll(m.path("prometheus"), 0o755); err != nil {
		return fmt.Errorf("prometheus targets: %w", err)
	}
	if err := writeFileAtomic(m.path("prometheus", "targets.json"), b, 0o644); err != nil {
		return err
	}
	return m.writeTapPods(s)
}

// The local mesh's metrics API (viz's metrics-api), in its own pod of
// namespace linkerd-viz, querying the Prometheus pod.
const (
	metricsAPIName = "metrics-api"
	// MetricsAPIPort is the metrics API's gRPC port in its pod.
	MetricsAPIPort = 8085
)

// addMetricsAPI starts the metrics API next to Prometheus (at promIP).
func (m *Mesh) addMetricsAPI(ctx context.Context, s *State, anchors string, promIP string) error {
	w := &Workload{Name: metricsAPIName, Namespace: VizNamespace, ServiceAccount: metricsAPIName, ControlPlane: true}
	proc := &Proc{Role: "metrics-api", Args: []string{m.bin("linkerd-controller"), "metrics-api",
		"-addr", fmt.Sprintf(":%d", MetricsAPIPort), "-admin-addr", ":9995",
		"-prometheus-url", "http://" + net.JoinHostPort(promIP, strconv.Itoa(PrometheusPort)),
		"-pods", "prometheus",
	}}
	if err := m.addPod(ctx, s, w, anchors, "", false, proc); err != nil {
		return err
	}
	m.logf("metrics API %s:%d", w.IP, MetricsAPIPort)
	if err := m.writeTargets(s); err != nil {
		return err
	}
	tapAddr, err := m.addVizTap(ctx, s, anchors)
	if err != nil {
		return err
	}
	return m.addVizWeb(ctx, s, anchors, net.JoinHostPort(w.IP.String(), strconv.Itoa(MetricsAPIPort)), tapAddr)
}

// FindWorkload returns the workload ns/name of the mesh whose state is in
// stateDir: ErrNotUp when no mesh is up there, an error naming it when the
// mesh has no such workload.
func FindWorkload(stateDir, ns, name string) (*Workload, error) {
	s, err := loadState(statePathOf(stateDir))
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, ErrNotUp
	}
	w := s.workload(ns, name)
	if w == nil {
		return nil, fmt.Errorf("the local mesh at %s has no pod %s/%s", stateDir, ns, name)
	}
	return w, nil
}

// MetricsAPIAddr returns the address of the metrics API of the mesh whose
// state is in stateDir.
func MetricsAPIAddr(stateDir string) (string, error) {
	w, err := FindWorkload(stateDir, VizNamespace, metricsAPIName)
	if err != nil {
		if errors.Is(err, ErrNotUp) {
			return "", err
		}
		return "", fmt.Errorf("the local mesh at %s runs no metrics API (it needs Prometheus: apt install prometheus, then linkerd local down and up)", stateDir)
	}
	return net.JoinHostPort(w.IP.String(), strconv.Itoa(MetricsAPIPort)), nil
}
