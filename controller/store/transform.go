package store

import (
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// keptPodAnnotations are the pod annotations the control plane reads.
var keptPodAnnotations = []string{
	k8s.ProxyOpaquePortsAnnotation,
	k8s.ProxyIgnoreInboundPortsAnnotation,
	k8s.ProxyInjectAnnotation,
	// The policy controller reads the pod's default policy.
	k8s.ProxyDefaultInboundPolicyAnnotation,
}

// keptProxyEnv are the proxy container environment variables the control
// plane reads.
var keptProxyEnv = []string{
	proxyenv.InboundListenAddr,
}

// StripPod returns a copy of pod with only what service discovery reads:
// name, namespace, UID, resource version, deletion time, labels, the
// annotations in keptPodAnnotations, owner references, service account,
// node name, host networking, container names and ports, the proxy
// container's relevant environment, and phase and pod IPs. Caching stripped
// pods keeps the destination's memory proportional to what it uses (a full
// Pod is often several kilobytes). StripPod is idempotent.
func StripPod(pod *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			UID:               pod.UID,
			ResourceVersion:   pod.ResourceVersion,
			CreationTimestamp: pod.CreationTimestamp,
			DeletionTimestamp: pod.DeletionTimestamp,
			Labels:            pod.Labels,
			OwnerReferences:   pod.OwnerReferences,
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: pod.Spec.ServiceAccountName,
			NodeName:           pod.Spec.NodeName,
			HostNetwork:        pod.Spec.HostNetwork,
			InitContainers:     stripContainers(pod.Spec.InitContainers),
			Containers:         stripContainers(pod.Spec.Containers),
		},
		Status: corev1.PodStatus{
			Phase:  pod.Status.Phase,
			PodIP:  pod.Status.PodIP,
			PodIPs: pod.Status.PodIPs,
		},
	}
	for _, a := range keptPodAnnotations {
		if v, ok := pod.Annotations[a]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[a] = v
		}
	}
	return out
}

func stripContainers(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name}
		for _, p := range c.Ports {
			out[i].Ports = append(out[i].Ports, corev1.ContainerPort{Name: p.Name, ContainerPort: p.ContainerPort, Protocol: p.Protocol})
		}
		if c.Name != k8s.ProxyContainerName {
			continue
		}
		for _, e := range c.Env {
			for _, keep := range keptProxyEnv {
				if e.Name == keep && e.ValueFrom == nil {
					out[i].Env = append(out[i].Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
				}
			}
		}
	}
	return out
}

// transformPod is the pod informer's TransformFunc.
func transformPod(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return StripPod(o), nil
	case cache.DeletedFinalStateUnknown:
		if pod, ok := o.Obj.(*corev1.Pod); ok {
			o.Obj = StripPod(pod)
		}
		return o, nil
	}
	return obj, nil
}

// transformOther drops managed fields and the last-applied annotation from
// Services and EndpointSlices, the bulk of their metadata.
func transformOther(obj any) (any, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		d.Obj, _ = transformOther(d.Obj)
		return d, nil
	}
	var meta *metav1.ObjectMeta
	switch o := obj.(type) {
	case *corev1.Service:
		meta = &o.ObjectMeta
	case *discoveryv1.EndpointSlice:
		meta = &o.ObjectMeta
	default:
		return obj, nil
	}
	meta.ManagedFields = nil
	if _, ok := meta.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		ann := make(map[string]string, len(meta.Annotations)-1)
		for k, v := range meta.Annotations {
			if k != corev1.LastAppliedConfigAnnotation {
				ann[k] = v
			}
		}
		meta.Annotations = ann
	}
	return obj, nil
}
