package localmesh

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/linkerd-go/linkerd/controller/store"
)

// selectorPrefix starts the store files of the EndpointSlices the mesh
// generates for applied Services with a selector.
const selectorPrefix = managedPrefix + "selector-"

// selectorSlices plays Kubernetes' EndpointSlice controller for the
// Services applied to the store (dir): a Service with a selector and no
// EndpointSlice of its own gets one over the workloads of its namespace
// whose labels match the selector, each Service port mapped to its
// targetPort (a number; a name or none means the workload's port, or the
// Service port). It returns the slices' YAML by store file name.
func selectorSlices(dir string, s *State, ready func(*Workload) bool) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read store: %w", err)
	}
	var svcs []*corev1.Service
	sliced := map[string]bool{} // namespace/service with an applied slice
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), appliedPrefix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read store: %w", err)
		}
		dec, err := store.DecodeObjects(b)
		if err != nil {
			continue // Apply checked it; a hand-edited file is destination's problem
		}
		for _, obj := range dec.Objects {
			switch o := obj.(type) {
			case *corev1.Service:
				if len(o.Spec.Selector) > 0 {
					svcs = append(svcs, o)
				}
			case *discoveryv1.EndpointSlice:
				sliced[o.Namespace+"/"+o.Labels[discoveryv1.LabelServiceName]] = true
			}
		}
	}
	out := map[string]string{}
	for _, svc := range svcs {
		if sliced[svc.Namespace+"/"+svc.Name] {
			continue
		}
		var pods []*Workload
		for _, w := range s.Workloads {
			if !w.ControlPlane && w.Namespace == svc.Namespace && matches(svc.Spec.Selector, podLabelsOf(w)) {
				pods = append(pods, w)
			}
		}
		out[selectorPrefix+svc.Namespace+"-"+svc.Name+".yaml"] = selectorSlice(svc, pods, ready)
	}
	return out, nil
}

// podLabelsOf returns w's labels (app=<service> for workloads from before
// Workload.Labels).
func podLabelsOf(w *Workload) map[string]string {
	if w.Labels != nil {
		return w.Labels
	}
	return map[string]string{"app": w.Service}
}

// matches reports whether labels has every key and value of selector.
func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// selectorSlice renders the EndpointSlice of svc over pods.
func selectorSlice(svc *corev1.Service, pods []*Workload, ready func(*Workload) bool) string {
	if len(svc.Spec.Ports) == 0 {
		return "" // nothing to route to
	}
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %[1]s-selector
  namespace: %[2]s
  labels: {kubernetes.io/service-name: %[1]s}
addressType: IPv4
ports:
`, svc.Name, svc.Namespace)
	for _, p := range svc.Spec.Ports {
		fmt.Fprintf(&b, "- {name: %q, port: %d, protocol: %s}\n", p.Name, targetPort(p, pods), cmpOr(string(p.Protocol), "TCP"))
	}
	b.WriteString("endpoints:")
	if len(pods) == 0 {
		b.WriteString(" []")
	}
	b.WriteString("\n")
	slices.SortFunc(pods, func(a, b *Workload) int { return a.IP.Compare(b.IP) })
	for _, w := range pods {
		fmt.Fprintf(&b, "- addresses: [%s]\n  conditions: {ready: %t}\n  targetRef: {kind: Pod, namespace: %s, name: %s}\n", w.IP, ready == nil || ready(w), w.Namespace, w.Name)
	}
	return b.String()
}

// targetPort is the endpoint port of Service port p: its numeric
// targetPort, else the port of the (first) selected workload that has one,
// else the Service port.
func targetPort(p corev1.ServicePort, pods []*Workload) int32 {
	if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal > 0 {
		return p.TargetPort.IntVal
	}
	if p.TargetPort.Type == intstr.String && p.TargetPort.StrVal != "" {
		for _, w := range pods {
			if w.Port > 0 {
				return int32(w.Port)
			}
		}
	}
	return p.Port
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
