package destination

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// apiPods is how many pods back the Service in TestGRPCOverAPIServer.
const apiPods = 5

// apiPodIP is the address the test gives pod web-i.
func apiPodIP(i int) string { return fmt.Sprintf("10.42.0.%d", 10+i) }

// apiManifest is the Service, its pods and their EndpointSlice.
func apiManifest(ns string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: %[1]s}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %[1]s}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
`, ns)
	for i := range apiPods {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Pod
metadata:
  name: web-%[2]d
  namespace: %[1]s
  labels: {app: web, linkerd.io/control-plane-ns: linkerd}
spec:
  serviceAccountName: web
  containers: [{name: app, image: example.com/web:1, ports: [{name: http, containerPort: 8080}]}]
`, ns, i)
	}
	fmt.Fprintf(&b, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-a
  namespace: %[1]s
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
`, ns)
	for i := range apiPods {
		fmt.Fprintf(&b, `- addresses: [%[2]s]
  conditions: {ready: true}
  zone: zone-a
  targetRef: {kind: Pod, namespace: %[1]s, name: web-%[3]d}
`, ns, apiPodIP(i), i)
	}
	return b.String()
}

// TestGRPCOverAPIServer serves the Destination API in-process over the
// informer-backed store watching a real kube-apiserver, and measures how
// long an EndpointSlice write takes to reach a subscriber.
func TestGRPCOverAPIServer(t *testing.T) {
	c := cluster.Start(t)
	cluster.RequireKubectl(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c.Apply(t, apiManifest(ns))
	// There is no kubelet: set the pods' IPs and phase through their status.
	for i := range apiPods {
		pod, err := c.Client.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("web-%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod.Status.Phase = corev1.PodRunning
		pod.Status.PodIP, pod.Status.PodIPs = apiPodIP(i), []corev1.PodIP{{IP: apiPodIP(i)}}
		if _, err := c.Client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("UpdateStatus: %v", err)
		}
	}

	st, err := store.NewKube(c.Client, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := startGRPC(t, st, Config{})
	client := dial(t, addr)

	endpoint := func(i int) string {
		return fmt.Sprintf("%s:8080 id=web.%s hint=h2 {control_plane_ns=linkerd,pod=web-%d,serviceaccount=web,zone=zone-a}", apiPodIP(i), ns, i)
	}
	all := make([]string, apiPods)
	for i := range apiPods {
		all[i] = endpoint(i)
	}
	web := get(t, client, "web."+ns+".svc.cluster.local:80")
	// The first answer waits for the store's initial sync.
	web.expectWithin(t, 30*time.Second, "add {namespace="+ns+",service=web} "+strings.Join(all, " "))

	// By pod IP: the pod itself.
	byIP := get(t, client, apiPodIP(0)+":8080")
	byIP.expectWithin(t, 5*time.Second, fmt.Sprintf("add {namespace=%s} %s:8080 id=web.%s hint=h2 {control_plane_ns=linkerd,pod=web-0,serviceaccount=web,zone=}", ns, apiPodIP(0), ns))

	// Timed changes: drop endpoints one by one from the end, then put one
	// back. Each latency runs from just before the API write to the
	// update's arrival at the client.
	esClient := c.Client.DiscoveryV1().EndpointSlices(ns)
	var latencies, writes []time.Duration
	change := func(what, want string, edit func(*discoveryv1.EndpointSlice)) {
		t.Helper()
		es, err := esClient.Get(ctx, "web-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		edit(es)
		start := time.Now()
		if _, err := esClient.Update(ctx, es, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		wrote := time.Since(start)
		// An absolute bound, generous to avoid flakes on a loaded machine;
		// the median is checked below.
		web.expectWithin(t, time.Second, want)
		lat := time.Since(start)
		t.Logf("%s: update arrived %v after the write began (API write took %v)", what, lat.Round(10*time.Microsecond), wrote.Round(10*time.Microsecond))
		latencies, writes = append(latencies, lat), append(writes, wrote)
	}
	var removed discoveryv1.Endpoint
	for i := apiPods - 1; i >= 1; i-- {
		change(fmt.Sprintf("remove web-%d", i), fmt.Sprintf("remove %s:8080", apiPodIP(i)), func(es *discoveryv1.EndpointSlice) {
			removed = es.Endpoints[len(es.Endpoints)-1]
			es.Endpoints = es.Endpoints[:len(es.Endpoints)-1]
		})
	}
	change("add web-1 back", "add {namespace="+ns+",service=web} "+endpoint(1), func(es *discoveryv1.EndpointSlice) {
		es.Endpoints = append(es.Endpoints, removed)
	})
	change("web-1 not ready", fmt.Sprintf("remove %s:8080", apiPodIP(1)), func(es *discoveryv1.EndpointSlice) {
		es.Endpoints[len(es.Endpoints)-1].Conditions.Ready = new(false)
	})

	p50 := median(latencies)
	t.Logf("endpoint update latency over %d changes: p50 %v, max %v (API writes: p50 %v)",
		len(latencies), p50.Round(10*time.Microsecond), slicesMax(latencies).Round(10*time.Microsecond), median(writes).Round(10*time.Microsecond))
	if p50 >= 100*time.Millisecond {
		t.Errorf("median latency from EndpointSlice write to subscriber update is %v, want < 100ms", p50)
	}

	// Nothing else was sent.
	for name, s := range map[string]*stream{"web": web, "by IP": byIP} {
		select {
		case u := <-s.updates:
			t.Errorf("%s: unexpected update %s", name, formatUpdate(u))
		default:
		}
	}
}

// expectWithin is expect with a caller-chosen wait.
func (s *stream) expectWithin(t *testing.T, wait time.Duration, want string) {
	t.Helper()
	select {
	case u := <-s.updates:
		if got := formatUpdate(u); got != want {
			t.Fatalf("update:\n got %s\nwant %s", got, want)
		}
	case err := <-s.err:
		t.Fatalf("stream failed waiting for %q: %v", want, err)
	case <-time.After(wait):
		t.Fatalf("no update within %v, want %s", wait, want)
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)/2]
}

func slicesMax(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}
