package destination

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/controller/store"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// startGRPC serves a Server over st on 127.0.0.1 and returns its address.
// Everything stops when the test ends.
func startGRPC(t *testing.T, st store.Store, cfg Config) (string, *Server) {
	t.Helper()
	s, err := NewServer(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	destinationv1.RegisterDestinationServer(gs, s)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = st.Run(ctx) })
	wg.Go(func() { _ = s.Run(ctx) })
	wg.Go(func() { _ = gs.Serve(lis) })
	t.Cleanup(func() {
		gs.Stop()
		cancel()
		wg.Wait()
	})
	return lis.Addr().String(), s
}

// stream is a Get stream read by a goroutine into updates.
type stream struct {
	updates chan *destinationv1.Update
	err     chan error
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) destinationv1.DestinationClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return destinationv1.NewDestinationClient(conn)
}

func get(t *testing.T, client destinationv1.DestinationClient, authority string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cs, err := client.Get(ctx, &destinationv1.GetRequest{Authority: authority})
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{updates: make(chan *destinationv1.Update, 1000), err: make(chan error, 1)}
	go func() {
		for {
			u, err := cs.Recv()
			if err != nil {
				s.err <- err
				return
			}
			s.updates <- u
		}
	}()
	return s
}

// expect waits up to a second for the next update and checks it.
func (s *stream) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case u := <-s.updates:
		if got := formatUpdate(u); got != want {
			t.Fatalf("update:\n got %s\nwant %s", got, want)
		}
	case err := <-s.err:
		t.Fatalf("stream failed waiting for %q: %v", want, err)
	case <-time.After(time.Second):
		t.Fatalf("no update within a second, want %s", want)
	}
}

func writeManifest(t *testing.T, dir, name, content string) {
	t.Helper()
	// Write and rename, as `linkerd local apply` does, so the store never
	// reads a half-written file.
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

const webManifest = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: emojivoto}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: emojivoto
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.42.0.7]
  zone: zone-a
  targetRef: {kind: Pod, name: web-0}
- addresses: [10.42.0.8]
  zone: zone-a
  targetRef: {kind: Pod, name: web-1}
`

const webPods = `apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: emojivoto
  labels: {linkerd.io/control-plane-ns: linkerd, app: web}
spec:
  serviceAccountName: web
  containers:
  - name: linkerd-proxy
    env: [{name: LINKERD2_PROXY_INBOUND_LISTEN_ADDR, value: "0.0.0.0:4143"}]
status: {phase: Running, podIP: 10.42.0.7}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: emojivoto}
spec: {serviceAccountName: web}
status: {phase: Running, podIP: 10.42.0.8}
`

// TestGRPCOverLocalStore serves the API for real over a directory of
// manifests: subscribers get the current endpoints at once, and file
// changes within a second.
func TestGRPCOverLocalStore(t *testing.T) {
	dir := t.TempDir()
	writeManifest(t, dir, "web.yaml", webManifest)
	writeManifest(t, dir, "pods.yaml", webPods)
	st, err := store.NewLocal(dir, 20*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := startGRPC(t, st, Config{})
	client := dial(t, addr)

	const (
		set  = "{namespace=emojivoto,service=web}"
		ep0  = "10.42.0.7:8080 id=web.emojivoto hint=h2 {control_plane_ns=linkerd,pod=web-0,serviceaccount=web,zone=zone-a}"
		ep1  = "10.42.0.8:8080 id=- hint=- {pod=web-1,serviceaccount=web,zone=zone-a}"
		ep2  = "10.42.0.9:8080 id=- hint=- {zone=}"
		auth = "web.emojivoto.svc.cluster.local:80"
	)
	web := get(t, client, auth)
	web.expect(t, "add "+set+" "+ep0+" "+ep1)
	byIP := get(t, client, "10.42.0.7:8080")
	// By pod IP there is no EndpointSlice, so no zone.
	byIP.expect(t, "add {namespace=emojivoto} 10.42.0.7:8080 id=web.emojivoto hint=h2 {control_plane_ns=linkerd,pod=web-0,serviceaccount=web,zone=}")
	unknown := get(t, client, "api.emojivoto.svc.cluster.local:80")
	unknown.expect(t, "no_endpoints exists=false")

	// web-1 becomes not ready.
	writeManifest(t, dir, "web.yaml", strings.Replace(webManifest, "- addresses: [10.42.0.8]\n", "- addresses: [10.42.0.8]\n  conditions: {ready: false}\n", 1))
	web.expect(t, "remove 10.42.0.8:8080")

	// A second slice in a new file.
	writeManifest(t, dir, "more.yaml", `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-def
  namespace: emojivoto
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.42.0.9]
`)
	web.expect(t, "add "+set+" "+ep2)

	// The api service appears.
	writeManifest(t, dir, "api.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: emojivoto}\nspec: {clusterIP: 10.96.0.11}\n")
	unknown.expect(t, "no_endpoints exists=true")

	// web's file goes: the service is gone.
	if err := os.Remove(filepath.Join(dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	web.expect(t, "no_endpoints exists=false")

	// The pod's file goes: nothing holds 10.42.0.7.
	if err := os.Remove(filepath.Join(dir, "pods.yaml")); err != nil {
		t.Fatal(err)
	}
	byIP.expect(t, "no_endpoints exists=false")

	for _, s := range []*stream{web, byIP, unknown} {
		select {
		case u := <-s.updates:
			t.Errorf("unexpected update %s", formatUpdate(u))
		default:
		}
	}
}

func TestGRPCErrorsAndExternalNames(t *testing.T) {
	st := store.NewMemory()
	addr, _ := startGRPC(t, st, Config{})
	client := dial(t, addr)

	for _, bad := range []string{"", "web.ns.svc.cluster.local:http", "a.b.c.d.svc.cluster.local"} {
		s := get(t, client, bad)
		select {
		case err := <-s.err:
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("Get(%q): %v, want InvalidArgument", bad, err)
			}
		case u := <-s.updates:
			t.Errorf("Get(%q) = %s, want an error", bad, formatUpdate(u))
		case <-time.After(time.Second):
			t.Errorf("Get(%q): no answer", bad)
		}
	}
	ext := get(t, client, "example.com:443")
	ext.expect(t, "no_endpoints exists=false")
}

// TestGRPCSlowStreamDoesNotDelayOthers: a client that stops reading (its
// HTTP/2 window fills, then its queue) must not delay another client's
// updates; when it reads again it converges to the current state.
func TestGRPCSlowStreamDoesNotDelayOthers(t *testing.T) {
	dir := t.TempDir()
	st, err := store.NewLocal(dir, 20*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Large updates: every generation replaces 200 endpoints.
	manifest := func(gen int) string {
		var b strings.Builder
		b.WriteString("apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: ns}\nspec:\n  ports: [{port: 80, targetPort: 8080}]\n---\n")
		b.WriteString("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: big-a, namespace: ns, labels: {kubernetes.io/service-name: big}}\naddressType: IPv4\nports: [{port: 8080}]\nendpoints:\n")
		for i := range 200 {
			fmt.Fprintf(&b, "- addresses: [10.%d.%d.%d]\n  zone: a-rather-long-zone-name-to-make-updates-bigger\n", gen%250, i/250, i%250+1)
		}
		return b.String()
	}
	wantAddrs := func(gen int) string {
		var out []string
		for i := range 200 {
			out = append(out, fmt.Sprintf("10.%d.%d.%d:8080", gen%250, i/250, i%250+1))
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	writeManifest(t, dir, "big.yaml", manifest(0))
	addr, srv := startGRPC(t, st, Config{SubscriberQueue: 2})

	// Fixed small windows disable BDP window growth, so the slow stream
	// really stalls.
	slowClient := dial(t, addr, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	slowCtx, slowCancel := context.WithCancel(context.Background())
	defer slowCancel()
	slow, err := slowClient.Get(slowCtx, &destinationv1.GetRequest{Authority: "big.ns.svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}

	fast := get(t, dial(t, addr), "big.ns.svc.cluster.local:80")
	fastModel := &clientModel{}
	waitModel := func(m *clientModel, s *stream, want string) {
		t.Helper()
		deadline := time.After(time.Second)
		for m.addrs() != want {
			select {
			case u := <-s.updates:
				m.apply(u)
			case err := <-s.err:
				t.Fatalf("stream failed: %v", err)
			case <-deadline:
				t.Fatalf("fast subscriber did not get the change within a second; has %d endpoints", len(m.eps))
			}
		}
	}
	waitModel(fastModel, fast, wantAddrs(0))

	const generations = 30
	for gen := 1; gen <= generations; gen++ {
		writeManifest(t, dir, "big.yaml", manifest(gen))
		waitModel(fastModel, fast, wantAddrs(gen))
	}
	if got := metricValue(t, srv.metrics.overflows); got < 1 {
		t.Fatalf("the slow stream never overflowed (overflows = %v); the test did not exercise coalescing", got)
	}

	// The slow client reads now and converges to the last generation.
	slowModel := &clientModel{}
	deadline := time.Now().Add(5 * time.Second)
	for slowModel.addrs() != wantAddrs(generations) {
		if time.Now().After(deadline) {
			t.Fatalf("slow subscriber did not converge; %d updates applied", slowModel.applied)
		}
		u, err := slow.Recv()
		if err != nil {
			t.Fatal(err)
		}
		slowModel.apply(u)
	}
	if slowModel.applied >= 2*generations {
		t.Errorf("slow subscriber got %d updates for %d generations; expected coalescing", slowModel.applied, generations)
	}
}

func (m *clientModel) addrs() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(slices.Sorted(maps.Keys(m.eps)), " ")
}

// TestGRPCOverKubeStore runs the server over the informer-backed store with
// a fake clientset: API changes reach subscribers.
func TestGRPCOverKubeStore(t *testing.T) {
	port := int32(8080)
	client := fake.NewClientset(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "ns", Labels: map[string]string{"linkerd.io/control-plane-ns": "linkerd"}},
			Spec:   corev1.PodSpec{ServiceAccountName: "web"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.7"}},
	)
	st, err := store.NewKube(client, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := startGRPC(t, st, Config{})
	s := get(t, dial(t, addr), "web.ns.svc.cluster.local:80")
	s.expect(t, "no_endpoints exists=true")

	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-a", Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: &port}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.7"},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "web-0"}}},
	}
	ctx := context.Background()
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.expect(t, "add {namespace=ns,service=web} 10.42.0.7:8080 id=web.ns hint=h2 {control_plane_ns=linkerd,pod=web-0,serviceaccount=web,zone=}")

	if err := client.CoreV1().Pods("ns").Delete(ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s.expect(t, "no_endpoints exists=true")
}
