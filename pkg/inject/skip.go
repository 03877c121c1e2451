package inject

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// Reason says why a pod was not injected. The values are Linkerd's, as the
// proxy injector reports them in its metrics and events.
type Reason string

// Reasons for skipping a pod.
const (
	HostNetworkEnabled             Reason = "host_network_enabled"
	SidecarExists                  Reason = "sidecar_already_exists"
	InjectEnableAnnotationAbsent   Reason = "injection_enable_annotation_absent"
	InjectDisableAnnotationPresent Reason = "injection_disable_annotation_present"
	InvalidInjectAnnotationPod     Reason = "invalid_inject_annotation_at_workload"
	InvalidInjectAnnotationNS      Reason = "invalid_inject_annotation_at_ns"
	UDPPortsEnabled                Reason = "udp_ports_enabled"
)

// Where an inject annotation was found (Skip.At).
const (
	AtWorkload  = "workload"
	AtNamespace = "namespace"
)

// Skip is a decision not to inject a pod.
type Skip struct {
	Reason Reason
	// At is AtWorkload or AtNamespace for the annotation-based reasons.
	At string
	// Message explains the decision to a person.
	Message string
}

func (s *Skip) Error() string { return s.Message }

// knownSidecars are containers whose presence means a mesh proxy is there
// already: Linkerd's own, and Istio's.
var knownSidecars = map[string]bool{
	k8s.ProxyContainerName: true,
	k8s.InitContainerName:  true,
	"istio-proxy":          true,
	"istio-init":           true,
}

// injectMode is the effective linkerd.io/inject value of a pod.
type injectMode struct {
	value string // enabled, ingress, disabled or "" (absent)
	at    string // AtWorkload or AtNamespace
}

// resolveInjectMode reads linkerd.io/inject from the pod, else from the
// namespace.
func resolveInjectMode(podAnn, nsAnn map[string]string) (injectMode, *Skip) {
	check := func(v, at string) (injectMode, *Skip) {
		switch v {
		case k8s.ProxyInjectEnabled, k8s.ProxyInjectIngress, k8s.ProxyInjectDisabled:
			return injectMode{value: v, at: at}, nil
		}
		reason := InvalidInjectAnnotationPod
		if at == AtNamespace {
			reason = InvalidInjectAnnotationNS
		}
		return injectMode{}, &Skip{Reason: reason, At: at, Message: fmt.Sprintf(
			"invalid value %q of annotation %s on the %s: want %s, %s or %s",
			v, k8s.ProxyInjectAnnotation, at, k8s.ProxyInjectEnabled, k8s.ProxyInjectIngress, k8s.ProxyInjectDisabled)}
	}
	if v, ok := podAnn[k8s.ProxyInjectAnnotation]; ok {
		return check(v, AtWorkload)
	}
	if v, ok := nsAnn[k8s.ProxyInjectAnnotation]; ok {
		return check(v, AtNamespace)
	}
	return injectMode{}, nil
}

// Check returns why the workload must not be injected, or nil. With
// requireAnnotation (the webhook), the pod or its namespace must ask for
// injection with linkerd.io/inject; otherwise (`linkerd inject`) only an
// explicit "disabled" stops it.
func Check(w *Workload, nsAnnotations map[string]string, requireAnnotation bool) *Skip {
	_, skip := check(w, nsAnnotations, requireAnnotation)
	return skip
}

func check(w *Workload, nsAnn map[string]string, requireAnnotation bool) (injectMode, *Skip) {
	spec := w.Spec
	if spec.HostNetwork {
		return injectMode{}, &Skip{Reason: HostNetworkEnabled, Message: "hostNetwork is enabled"}
	}
	if name := sidecarName(spec); name != "" {
		return injectMode{}, &Skip{Reason: SidecarExists, Message: fmt.Sprintf("pod already has a %q container", name)}
	}
	mode, skip := resolveInjectMode(w.Meta.Annotations, nsAnn)
	if skip != nil {
		return mode, skip
	}
	switch {
	case mode.value == k8s.ProxyInjectDisabled:
		return mode, &Skip{Reason: InjectDisableAnnotationPresent, At: mode.at, Message: fmt.Sprintf(
			"the %s is annotated %q", mode.at, k8s.ProxyInjectAnnotation+": "+k8s.ProxyInjectDisabled)}
	case mode.value == "" && requireAnnotation:
		return mode, &Skip{Reason: InjectEnableAnnotationAbsent, Message: fmt.Sprintf(
			"neither the namespace nor the pod is annotated %q", k8s.ProxyInjectAnnotation+": "+k8s.ProxyInjectEnabled)}
	}
	if hasUDPPorts(spec) {
		return mode, &Skip{Reason: UDPPortsEnabled, Message: "the pod has UDP ports, which the proxy cannot carry"}
	}
	return mode, nil
}

func sidecarName(spec *corev1.PodSpec) string {
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			if knownSidecars[c.Name] {
				return c.Name
			}
		}
	}
	return ""
}

func hasUDPPorts(spec *corev1.PodSpec) bool {
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.Protocol == corev1.ProtocolUDP {
					return true
				}
			}
		}
	}
	return false
}
