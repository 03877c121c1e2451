package destination

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Test fixtures: small constructors with options, so that each test case
// shows only what matters to it.

const testNS = "ns"

func ptr[T any](v T) *T { return &v }

type svcOpt func(*corev1.Service)

func newSvc(name, clusterIP string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
		Spec:       corev1.ServiceSpec{ClusterIP: clusterIP},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func svcPort(name string, port int32, target intstr.IntOrString) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: name, Port: port, TargetPort: target, Protocol: corev1.ProtocolTCP})
	}
}

func svcAnnotation(k, v string) svcOpt {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}

func externalName(s *corev1.Service) {
	s.Spec.Type = corev1.ServiceTypeExternalName
	s.Spec.ExternalName = "example.com"
}

type epOpt func(*discoveryv1.Endpoint)

func newEp(ip, pod string, opts ...epOpt) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}
	if pod != "" {
		e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: testNS, Name: pod}
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func notReady(e *discoveryv1.Endpoint) { e.Conditions.Ready = ptr(false) }

// terminating marks the endpoint terminating but leaves it ready, as for
// Services with publishNotReadyAddresses: termination alone must remove it.
func terminating(e *discoveryv1.Endpoint) { e.Conditions.Terminating = ptr(true) }

func readyUnset(e *discoveryv1.Endpoint) { e.Conditions.Ready = nil }

func inZone(z string) epOpt { return func(e *discoveryv1.Endpoint) { e.Zone = ptr(z) } }

func withHostname(h string) epOpt { return func(e *discoveryv1.Endpoint) { e.Hostname = ptr(h) } }

// slicePorts builds EndpointSlice ports from "name=port" pairs.
func slicePorts(pairs ...string) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, p := range pairs {
		name, num, _ := strings.Cut(p, "=")
		var n int32
		fmt.Sscan(num, &n)
		out = append(out, discoveryv1.EndpointPort{Name: ptr(name), Port: ptr(n), Protocol: ptr(corev1.ProtocolTCP)})
	}
	return out
}

func newSlice(name, svc string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: testNS, Labels: map[string]string{k8s.ServiceNameLabel: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
		Endpoints:   eps,
	}
}

type podOpt func(*corev1.Pod)

// newPod returns a running, unmeshed pod with ServiceAccount "sa", owned by
// Deployment "web" through ReplicaSet "web-abc12".
func newPod(name, ip string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: testNS,
			Labels:          map[string]string{k8s.PodTemplateHashLabel: "abc12"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-abc12", Controller: ptr(true)}},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "sa",
			Containers:         []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// meshed labels the pod as meshed by control plane ns and gives it a proxy.
func meshedBy(ns string) podOpt {
	return func(p *corev1.Pod) {
		p.Labels[k8s.ControllerNSLabel] = ns
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: k8s.ProxyContainerName})
	}
}

var meshed = meshedBy("linkerd")

func podAnnotation(k, v string) podOpt {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[k] = v
	}
}

func proxyInbound(addr string) podOpt {
	return func(p *corev1.Pod) {
		c := k8s.ProxyContainer(p)
		c.Env = append(c.Env, corev1.EnvVar{Name: proxyenv.InboundListenAddr, Value: addr})
	}
}

func ownedBy(kind, name string) podOpt {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: name, Controller: ptr(true)}}
		delete(p.Labels, k8s.PodTemplateHashLabel)
	}
}

func addContainerPort(name string, port int32) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: name, ContainerPort: port})
	}
}

func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }

// harness drives a Server over a Memory store synchronously: each change
// is followed by processing the whole work queue, after which the
// subscribers' queues hold exactly the resulting transitions.
type harness struct {
	t  *testing.T
	st *store.Memory
	s  *Server
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	st := store.NewMemory()
	st.MarkSynced()
	s, err := NewServer(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.queue.ShutDown)
	return &harness{t: t, st: st, s: s}
}

func (h *harness) apply(objs ...metav1.Object) {
	h.st.Apply(objs...)
	h.process()
}

func (h *harness) delete(keys ...store.Key) {
	h.st.Delete(keys...)
	h.process()
}

func (h *harness) process() {
	for i := 0; h.s.queue.Len() > 0; i++ {
		if i > 1000 {
			h.t.Fatal("work queue does not drain")
		}
		h.s.processNext()
	}
}

func (h *harness) subscribe(authority string) *subscriber {
	h.t.Helper()
	tg, err := parseAuthority(authority, h.s.cfg.ClusterDomain)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.s.reg.subscribe(tg)
}

// take returns the formatted updates queued for sub, without blocking.
func take(sub *subscriber) []string {
	var out []string
	for {
		select {
		case tr := <-sub.queue:
			for _, u := range tr.updates {
				out = append(out, formatUpdate(u))
			}
			sub.sent = tr.state
		default:
			return out
		}
	}
}

func svcKey(name string) store.Key {
	return store.Key{Kind: store.KindService, Namespace: testNS, Name: name}
}
func podKey(name string) store.Key {
	return store.Key{Kind: store.KindPod, Namespace: testNS, Name: name}
}
func sliceKey(name string) store.Key {
	return store.Key{Kind: store.KindEndpointSlice, Namespace: testNS, Name: name}
}

// formatUpdate renders an update on one line:
//
//	no_endpoints exists=true
//	remove 10.0.0.1:8080 10.0.0.2:8080
//	add {namespace=ns,service=web} 10.0.0.1:8080 id=sa.ns hint=h2 {pod=...,zone=}
//
// Identities of this control plane are shortened to "<sa>.<ns>".
func formatUpdate(u *destinationv1.Update) string {
	switch k := u.Kind.(type) {
	case *destinationv1.Update_NoEndpoints:
		return fmt.Sprintf("no_endpoints exists=%t", k.NoEndpoints.GetExists())
	case *destinationv1.Update_Remove:
		parts := []string{"remove"}
		for _, a := range k.Remove.GetAddrs() {
			parts = append(parts, formatAddr(a))
		}
		return strings.Join(parts, " ")
	case *destinationv1.Update_Add:
		parts := []string{"add", formatLabels(k.Add.GetMetricLabels())}
		for _, ep := range k.Add.GetEndpoints() {
			parts = append(parts, formatEndpoint(ep))
		}
		return strings.Join(parts, " ")
	}
	return "unknown"
}

func formatAddr(a *destinationv1.TcpAddress) string {
	ip, ok := netip.AddrFromSlice(a.GetIp())
	if !ok {
		return fmt.Sprintf("bad-ip(%x)", a.GetIp())
	}
	return netip.AddrPortFrom(ip, uint16(a.GetPort())).String()
}

func formatEndpoint(ep *destinationv1.Endpoint) string {
	id := ep.GetTlsIdentity()
	if short, ok := strings.CutSuffix(id, ".serviceaccount.identity.linkerd.cluster.local"); ok {
		id = short
	}
	if id == "" {
		id = "-"
	}
	hint := "-"
	if h := ep.GetHint(); h != nil {
		var hs []string
		if h.GetH2() {
			hs = append(hs, "h2")
		}
		if h.GetOpaque() {
			hs = append(hs, "opaque")
		}
		if p := h.GetOpaqueTransportPort(); p != 0 {
			hs = append(hs, fmt.Sprintf("transport=%d", p))
		}
		hint = strings.Join(hs, ",")
	}
	w := ""
	if ep.GetWeight() != defaultWeight {
		w = fmt.Sprintf(" weight=%d", ep.GetWeight())
	}
	return fmt.Sprintf("%s%s id=%s hint=%s %s", formatAddr(ep.GetAddr()), w, id, hint, formatLabels(ep.GetMetricLabels()))
}

func formatLabels(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// metricValue returns the value of a single-metric gauge or counter.
func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	close(ch)
	m, ok := <-ch
	if !ok {
		t.Fatal("collector has no metric")
	}
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	switch {
	case pb.Gauge != nil:
		return pb.Gauge.GetValue()
	case pb.Counter != nil:
		return pb.Counter.GetValue()
	}
	t.Fatalf("metric %v is neither a gauge nor a counter", m.Desc())
	return 0
}
