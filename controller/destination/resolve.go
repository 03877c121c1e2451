package destination

import (
	"log/slog"
	"net/netip"
	"strings"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// defaultWeight is every endpoint's weight.
const defaultWeight = 10000

// Metric label names.
const (
	labelNamespace       = "namespace"
	labelService         = "service"
	labelPod             = "pod"
	labelServiceAccount  = "serviceaccount"
	labelPodTemplateHash = "pod_template_hash"
	labelControlPlaneNS  = "control_plane_ns"
	labelZone            = "zone"
)

// kindIP is the Kind of the dependency keys of IP targets: a watcher on an
// IP depends on whatever currently holds the IP.
const kindIP store.Kind = "ip"

func ipKey(ip netip.Addr) store.Key {
	return store.Key{Kind: kindIP, Name: ip.Unmap().String()}
}

// resolver computes a target's snapshot from the store.
type resolver struct {
	store         store.Reader
	controllerNS  string
	trustDomain   string
	defaultOpaque k8s.PortSet
	h2Upgrade     bool // meshed endpoints get the h2 hint
	log           *slog.Logger
}

// resolve returns the current state of t and the store keys it was computed
// from: a change to any of them may change the state.
func (r *resolver) resolve(t target) (*snapshot, []store.Key) {
	if t.ip.IsValid() {
		return r.resolveIP(t)
	}
	deps := []store.Key{{Kind: store.KindService, Namespace: t.namespace, Name: t.service}}
	svc, ok := r.store.Service(t.namespace, t.service)
	if !ok || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return &snapshot{}, deps
	}
	return r.serviceEndpoints(svc, t.port, t.hostname, deps)
}

func (r *resolver) resolveIP(t target) (*snapshot, []store.Key) {
	deps := []store.Key{ipKey(t.ip)}
	if svcs := r.store.ServicesByIP(t.ip); len(svcs) > 0 {
		svc := svcs[0]
		deps = append(deps, store.Key{Kind: store.KindService, Namespace: svc.Namespace, Name: svc.Name})
		return r.serviceEndpoints(svc, t.port, "", deps)
	}
	for _, pod := range r.store.PodsByIP(t.ip) {
		if podTerminated(pod) {
			continue
		}
		deps = append(deps, store.Key{Kind: store.KindPod, Namespace: pod.Namespace, Name: pod.Name})
		addr := netip.AddrPortFrom(t.ip, uint16(t.port))
		return &snapshot{
			exists:    true,
			labels:    map[string]string{labelNamespace: pod.Namespace},
			endpoints: map[netip.AddrPort]*destinationv1.Endpoint{addr: r.endpoint(addr, pod, nil, t.port, "")},
		}, deps
	}
	return &snapshot{}, deps
}

// serviceEndpoints returns the ready endpoints of svc's port (the Service
// port numbered port; when the Service has no such port, the endpoints'
// same-numbered port), resolving target ports through the EndpointSlices'
// ports, so named target ports work even when pods number them differently.
func (r *resolver) serviceEndpoints(svc *corev1.Service, port uint32, hostname string, deps []store.Key) (*snapshot, []store.Key) {
	snap := &snapshot{
		exists:    true,
		labels:    map[string]string{labelNamespace: svc.Namespace, labelService: svc.Name},
		endpoints: map[netip.AddrPort]*destinationv1.Endpoint{},
		balancer:  r.balancer(svc),
	}
	svcPort := servicePort(svc, port)
	for _, es := range r.store.EndpointSlices(svc.Namespace, svc.Name) {
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		targetPort, ok := slicePort(es, svcPort, port)
		if !ok {
			continue
		}
		for _, ep := range es.Endpoints {
			if !endpointReady(ep) || len(ep.Addresses) == 0 {
				continue
			}
			if hostname != "" && (ep.Hostname == nil || *ep.Hostname != hostname) {
				continue
			}
			ip, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil {
				continue
			}
			var pod *corev1.Pod
			if ref := ep.TargetRef; ref != nil && ref.Kind == "Pod" {
				ns := ref.Namespace
				if ns == "" {
					ns = es.Namespace
				}
				deps = append(deps, store.Key{Kind: store.KindPod, Namespace: ns, Name: ref.Name})
				p, ok := r.store.Pod(ns, ref.Name)
				if !ok {
					// Not cached yet: wait for it rather than announce the
					// endpoint without its identity.
					r.log.Debug("endpoint's pod not found", "service", svc.Namespace+"/"+svc.Name, "pod", ns+"/"+ref.Name)
					continue
				}
				if podTerminated(p) {
					continue
				}
				pod = p
			}
			zone := ""
			if ep.Zone != nil {
				zone = *ep.Zone
			}
			addr := netip.AddrPortFrom(ip.Unmap(), uint16(targetPort))
			snap.endpoints[addr] = r.endpoint(addr, pod, svc, port, zone)
		}
	}
	return snap, deps
}

// balancer returns the algorithm svc's annotation asks for; "" (the
// proxy's default) when it has none or an unknown one.
func (r *resolver) balancer(svc *corev1.Service) string {
	v, ok := svc.Annotations[k8s.BalancerAlgorithmAnnotation]
	if !ok {
		return ""
	}
	if err := k8s.ValidateBalancerAlgorithm(v); err != nil {
		r.log.Warn("ignoring the Service's balancer annotation", "service", svc.Namespace+"/"+svc.Name, "err", err)
		return ""
	}
	return v
}

// servicePort returns svc's TCP port numbered port, or nil.
func servicePort(svc *corev1.Service, port uint32) *corev1.ServicePort {
	for i, p := range svc.Spec.Ports {
		if uint32(p.Port) == port && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
			return &svc.Spec.Ports[i]
		}
	}
	return nil
}

// slicePort returns the endpoints' port in es for the Service port svcPort
// (nil: the Service has no port numbered port).
func slicePort(es *discoveryv1.EndpointSlice, svcPort *corev1.ServicePort, port uint32) (uint32, bool) {
	if svcPort == nil {
		return port, true
	}
	for _, p := range es.Ports {
		if p.Port == nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
			continue
		}
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name == svcPort.Name {
			return uint32(*p.Port), true
		}
	}
	if len(es.Ports) > 0 {
		return 0, false // this slice does not serve the port
	}
	// No ports listed: the slice stands for all ports; use a numeric target port.
	if tp := svcPort.TargetPort.IntValue(); tp > 0 && tp <= 65535 {
		return uint32(tp), true
	}
	return port, true
}

// endpointReady: ready (unset means ready) and not terminating.
func endpointReady(ep discoveryv1.Endpoint) bool {
	if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
		return false
	}
	return ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

func podTerminated(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// endpoint describes addr, served by pod (nil when the endpoint is not a
// pod) behind svc's port svcPort (svc nil for pod IP lookups).
//
// A pod is meshed when its linkerd.io/control-plane-ns label is this
// control plane's namespace. A meshed pod's endpoint gets the pod's
// identity and the h2 hint (unless disabled), unless the port is in its skip-inbound-ports
// (traffic to it bypasses the proxy, so it is treated as unmeshed). An
// opaque port gets the opaque hint; on a meshed pod also the proxy's
// inbound port for opaque transport, and no h2 hint.
func (r *resolver) endpoint(addr netip.AddrPort, pod *corev1.Pod, svc *corev1.Service, svcPort uint32, zone string) *destinationv1.Endpoint {
	labels := map[string]string{labelZone: zone}
	ep := &destinationv1.Endpoint{Addr: tcpAddress(addr), Weight: defaultWeight, MetricLabels: labels}
	port := uint32(addr.Port())
	opaque := r.isOpaque(pod, port, svc, svcPort)
	if pod == nil {
		if opaque {
			ep.Hint = &destinationv1.ProtocolHint{Opaque: true}
		}
		return ep
	}

	labels[labelPod] = pod.Name
	if o := k8s.PodOwner(pod); o.Kind != "" {
		labels[o.Kind] = o.Name
	}
	sa := k8s.ServiceAccountName(pod)
	labels[labelServiceAccount] = sa
	if h := pod.Labels[k8s.PodTemplateHashLabel]; h != "" {
		labels[labelPodTemplateHash] = h
	}
	if ns := pod.Labels[k8s.ControllerNSLabel]; ns != "" {
		labels[labelControlPlaneNS] = ns
	}

	switch {
	case k8s.IsMeshedBy(pod, r.controllerNS) && !r.skipsInbound(pod, port):
		ep.TlsIdentity = identity.Name(sa, pod.Namespace, r.controllerNS, r.trustDomain)
		if opaque {
			ep.Hint = &destinationv1.ProtocolHint{Opaque: true, OpaqueTransportPort: k8s.ProxyInboundPort(pod)}
		} else if r.h2Upgrade {
			ep.Hint = &destinationv1.ProtocolHint{H2: true}
		}
	case opaque:
		ep.Hint = &destinationv1.ProtocolHint{Opaque: true}
	}
	return ep
}

// isOpaque decides whether traffic to the pod's port (behind svc's port
// svcPort) is opaque. The pod's opaque-ports annotation decides for its
// ports, the Service's for its ports; either saying opaque is enough. When
// neither has the annotation, the default opaque ports apply to the pod port.
func (r *resolver) isOpaque(pod *corev1.Pod, port uint32, svc *corev1.Service, svcPort uint32) bool {
	annotated, opaque := false, false
	if pod != nil {
		if v, ok := pod.Annotations[k8s.ProxyOpaquePortsAnnotation]; ok {
			set, err := k8s.ParsePortSetNamed(v, k8s.ContainerPortNames(pod))
			if err != nil {
				r.log.Debug("invalid opaque-ports annotation", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			}
			annotated, opaque = true, set.Contains(port)
		}
	}
	if svc != nil {
		if v, ok := svc.Annotations[k8s.ProxyOpaquePortsAnnotation]; ok {
			set, err := k8s.ParsePortSet(v)
			if err != nil {
				r.log.Debug("invalid opaque-ports annotation", "service", svc.Namespace+"/"+svc.Name, "err", err)
			}
			annotated, opaque = true, opaque || set.Contains(svcPort)
		}
	}
	if !annotated {
		return r.defaultOpaque.Contains(port)
	}
	return opaque
}

func (r *resolver) skipsInbound(pod *corev1.Pod, port uint32) bool {
	v, ok := pod.Annotations[k8s.ProxyIgnoreInboundPortsAnnotation]
	if !ok {
		return false
	}
	set, err := k8s.ParsePortSet(v)
	if err != nil {
		r.log.Debug("invalid skip-inbound-ports annotation", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	return set.Contains(port)
}

func parseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	return a.Unmap(), err
}
