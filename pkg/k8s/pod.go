package k8s

import (
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// ProxyContainer returns the pod's proxy container, looking at native
// sidecars (init containers) first, or nil when the pod has none.
func ProxyContainer(pod *corev1.Pod) *corev1.Container {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == ProxyContainerName {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == ProxyContainerName {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

// ProxyInboundPort returns the port of the pod's proxy inbound listener,
// from the proxy container's LINKERD2_PROXY_INBOUND_LISTEN_ADDR
// ("0.0.0.0:4143", "[::]:4143"), or DefaultProxyInboundPort when the pod has
// no proxy or the variable is absent or not a literal address.
func ProxyInboundPort(pod *corev1.Pod) uint32 {
	c := ProxyContainer(pod)
	if c == nil {
		return DefaultProxyInboundPort
	}
	for _, e := range c.Env {
		if e.Name != proxyenv.InboundListenAddr {
			continue
		}
		_, port, err := net.SplitHostPort(strings.TrimSpace(e.Value))
		if err != nil {
			return DefaultProxyInboundPort
		}
		p, err := parsePort(port)
		if err != nil {
			return DefaultProxyInboundPort
		}
		return uint32(p)
	}
	return DefaultProxyInboundPort
}

// ContainerPortNames maps the names of the pod's container ports (regular
// and init containers) to their numbers, for ParsePortSetNamed.
func ContainerPortNames(pod *corev1.Pod) map[string]uint16 {
	var names map[string]uint16
	add := func(cs []corev1.Container) {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.Name == "" || p.ContainerPort <= 0 || p.ContainerPort > 65535 {
					continue
				}
				if names == nil {
					names = map[string]uint16{}
				}
				names[p.Name] = uint16(p.ContainerPort)
			}
		}
	}
	add(pod.Spec.InitContainers)
	add(pod.Spec.Containers)
	return names
}

// IsMeshedBy reports whether the pod's proxy belongs to the control plane in
// namespace controlPlaneNS (label linkerd.io/control-plane-ns).
func IsMeshedBy(pod *corev1.Pod, controlPlaneNS string) bool {
	return controlPlaneNS != "" && pod.Labels[ControllerNSLabel] == controlPlaneNS
}

// Owner is the workload that owns a pod, as used in metric labels: Kind is
// the lower-case kind ("deployment", "statefulset", "daemonset", "job",
// "replicaset", ...).
type Owner struct {
	Kind string
	Name string
}

// PodOwner returns the workload owning the pod: its controller owner
// reference (or the first owner when none is marked as controller). A
// ReplicaSet whose name is "<name>-<pod-template-hash>" is reported as the
// Deployment <name>, without looking the ReplicaSet up. A pod without
// owners returns the zero Owner.
func PodOwner(pod *corev1.Pod) Owner {
	refs := pod.OwnerReferences
	if len(refs) == 0 {
		return Owner{}
	}
	ref := refs[0]
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			ref = r
			break
		}
	}
	kind := strings.ToLower(ref.Kind)
	if kind == "replicaset" {
		if hash := pod.Labels[PodTemplateHashLabel]; hash != "" {
			if name, ok := strings.CutSuffix(ref.Name, "-"+hash); ok && name != "" {
				return Owner{Kind: "deployment", Name: name}
			}
		}
	}
	return Owner{Kind: kind, Name: ref.Name}
}

// ServiceAccountName returns the pod's ServiceAccount, "default" when unset
// (as the API server defaults it).
func ServiceAccountName(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName != "" {
		return pod.Spec.ServiceAccountName
	}
	return "default"
}
