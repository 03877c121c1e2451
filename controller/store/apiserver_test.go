package store_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// nsEvents records the store events of one namespace as
// "type Kind/ns/name" strings.
type nsEvents struct {
	ns string
	mu sync.Mutex
	ev []string
	ch chan struct{} // signalled on every recorded event
}

func (r *nsEvents) handle(ev store.Event) {
	if ev.Object.GetNamespace() != r.ns {
		return
	}
	r.mu.Lock()
	r.ev = append(r.ev, ev.Type.String()+" "+ev.Key().String())
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

// waitEvents waits up to 5s until the recorded events, sorted, equal want,
// and clears them.
func (r *nsEvents) waitEvents(t *testing.T, what string, want ...string) {
	t.Helper()
	r.waitEventsIgnoring(t, what, nil, want...)
}

// waitEventsIgnoring is waitEvents, disregarding the events in ignore.
func (r *nsEvents) waitEventsIgnoring(t *testing.T, what string, ignore []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		got := slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(r.ev), func(e string) bool { return slices.Contains(ignore, e) })))
		done := slices.Equal(got, want)
		if done || len(got) > len(want) {
			r.ev = nil
		}
		r.mu.Unlock()
		if done {
			return
		}
		if len(got) > len(want) {
			t.Fatalf("%s: events\n got %q\nwant %q", what, got, want)
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("%s: events after 5s\n got %q\nwant %q", what, got, want)
		}
	}
}

// TestKubeStoreAgainstAPIServer runs the informer-backed store against a
// real kube-apiserver: objects applied with kubectl arrive as additions,
// a pod's status update (no kubelet here) re-indexes it by IP, and
// deletions arrive.
func TestKubeStoreAgainstAPIServer(t *testing.T) {
	c := cluster.Start(t)
	cluster.RequireKubectl(t)
	ns := c.Namespace(t)

	st, err := store.NewKube(c.Client, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &nsEvents{ns: ns, ch: make(chan struct{}, 1)}
	st.AddHandler(rec.handle)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !st.HasSynced() {
		if time.Now().After(deadline) {
			t.Fatal("store did not sync in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	c.Apply(t, fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: %[1]s}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: %[1]s
  annotations: {keep: me}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: %[1]s
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.42.0.7]
  targetRef: {kind: Pod, namespace: %[1]s, name: web-0}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: %[1]s
  labels: {app: web, linkerd.io/control-plane-ns: linkerd}
  annotations: {config.linkerd.io/opaque-ports: "3306", unrelated: dropped}
spec:
  serviceAccountName: web
  containers:
  - name: app
    image: example.com/web:1
    env: [{name: SECRET, value: x}]
    ports: [{name: http, containerPort: 8080}]
`, ns))
	rec.waitEvents(t, "apply",
		"added Service/"+ns+"/web",
		"added EndpointSlice/"+ns+"/web-abc",
		"added Pod/"+ns+"/web-0",
	)

	svc, ok := st.Service(ns, "web")
	if !ok {
		t.Fatal("service missing from the store")
	}
	if svc.Annotations["keep"] != "me" {
		t.Errorf("service annotations = %v", svc.Annotations)
	}
	if _, ok := svc.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		t.Error("kubectl's last-applied-configuration annotation is kept")
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !netip.MustParsePrefix(cluster.ServiceCIDR).Contains(ip) {
		t.Fatalf("allocated cluster IP %q is not in %s", svc.Spec.ClusterIP, cluster.ServiceCIDR)
	}
	if got := st.ServicesByIP(ip); len(got) != 1 || got[0].Name != "web" {
		t.Errorf("ServicesByIP(%s) = %d services", ip, len(got))
	}
	if got := st.EndpointSlices(ns, "web"); len(got) != 1 || got[0].Name != "web-abc" {
		t.Errorf("EndpointSlices = %d", len(got))
	}
	pod, ok := st.Pod(ns, "web-0")
	if !ok {
		t.Fatal("pod missing from the store")
	}
	if len(pod.ManagedFields) != 0 || len(pod.Spec.Containers) != 1 || len(pod.Spec.Containers[0].Env) != 0 || pod.Spec.Containers[0].Image != "" ||
		pod.Annotations["unrelated"] != "" || pod.Annotations[k8s.ProxyOpaquePortsAnnotation] != "3306" || pod.Spec.ServiceAccountName != "web" {
		t.Errorf("cached pod is not stripped as expected:\n%+v", pod)
	}

	// No kubelet: give the pod an IP through its status, as one would.
	podIP := netip.MustParseAddr("10.42.0.7")
	if got := st.PodsByIP(podIP); len(got) != 0 {
		t.Fatalf("pod indexed by IP before it has one: %d", len(got))
	}
	full, err := c.Client.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	full.Status.Phase = corev1.PodRunning
	full.Status.PodIP, full.Status.PodIPs = podIP.String(), []corev1.PodIP{{IP: podIP.String()}}
	if _, err := c.Client.CoreV1().Pods(ns).UpdateStatus(ctx, full, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("UpdateStatus: %v", err)
	}
	rec.waitEvents(t, "pod status", "updated Pod/"+ns+"/web-0")
	if got := st.PodsByIP(podIP); len(got) != 1 || got[0].Name != "web-0" {
		t.Fatalf("PodsByIP(%s) = %d pods", podIP, len(got))
	}

	// Deletions, one through kubectl.
	c.Kubectl(t, "-n", ns, "delete", "endpointslice", "web-abc")
	if err := c.Client.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Without a kubelet a pod is only gone once deleted with no grace.
	if err := c.Client.CoreV1().Pods(ns).Delete(ctx, "web-0", *metav1.NewDeleteOptions(0)); err != nil {
		t.Fatal(err)
	}
	// The pod may first be updated with its deletion timestamp.
	rec.waitEventsIgnoring(t, "deletions", []string{"updated Pod/" + ns + "/web-0"},
		"deleted EndpointSlice/"+ns+"/web-abc",
		"deleted Service/"+ns+"/web",
		"deleted Pod/"+ns+"/web-0",
	)
	if _, ok := st.Service(ns, "web"); ok {
		t.Error("deleted service still in the store")
	}
	if got := st.PodsByIP(podIP); len(got) != 0 {
		t.Errorf("deleted pod still indexed by IP")
	}
	if got := st.EndpointSlices(ns, "web"); len(got) != 0 {
		t.Errorf("deleted slice still in the store")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if s := strings.Join(rec.ev, ","); s != "" {
		t.Errorf("unexpected events: %s", s)
	}
}
