package store

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func fullPod() *corev1.Pod {
	ctrl := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-5d8f-x", Namespace: "emojivoto", UID: "u1", ResourceVersion: "7",
			Labels: map[string]string{k8s.ControllerNSLabel: "linkerd", k8s.PodTemplateHashLabel: "5d8f"},
			Annotations: map[string]string{
				k8s.ProxyOpaquePortsAnnotation:        "3306",
				k8s.ProxyIgnoreInboundPortsAnnotation: "9000",
				"kubectl.kubernetes.io/restartedAt":   "2024-01-01",
			},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-5d8f", Controller: &ctrl}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			NodeName:           "node-1",
			Volumes:            []corev1.Volume{{Name: "data"}},
			InitContainers: []corev1.Container{{
				Name:  k8s.ProxyContainerName,
				Image: "proxy:1",
				Ports: []corev1.ContainerPort{{Name: "linkerd-admin", ContainerPort: 4191}},
				Env: []corev1.EnvVar{
					{Name: "LINKERD2_PROXY_LOG", Value: "warn"},
					{Name: proxyenv.InboundListenAddr, Value: "0.0.0.0:4143"},
					{Name: "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", Value: "-----BEGIN CERTIFICATE-----..."},
				},
			}},
			Containers: []corev1.Container{{
				Name: "app", Image: "web:1", Command: []string{"/web"},
				Env:   []corev1.EnvVar{{Name: "SECRET", Value: "x"}},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
			}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.42.0.7", PodIPs: []corev1.PodIP{{IP: "10.42.0.7"}},
			HostIP:     "192.168.1.5",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
}

func TestStripPod(t *testing.T) {
	in := fullPod()
	got := StripPod(in)
	ctrl := true
	want := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-5d8f-x", Namespace: "emojivoto", UID: "u1", ResourceVersion: "7",
			Labels: map[string]string{k8s.ControllerNSLabel: "linkerd", k8s.PodTemplateHashLabel: "5d8f"},
			Annotations: map[string]string{
				k8s.ProxyOpaquePortsAnnotation:        "3306",
				k8s.ProxyIgnoreInboundPortsAnnotation: "9000",
			},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-5d8f", Controller: &ctrl}},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			NodeName:           "node-1",
			InitContainers: []corev1.Container{{
				Name:  k8s.ProxyContainerName,
				Ports: []corev1.ContainerPort{{Name: "linkerd-admin", ContainerPort: 4191}},
				Env:   []corev1.EnvVar{{Name: proxyenv.InboundListenAddr, Value: "0.0.0.0:4143"}},
			}},
			Containers: []corev1.Container{{
				Name:  "app",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
			}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.7", PodIPs: []corev1.PodIP{{IP: "10.42.0.7"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("StripPod:\n got %+v\nwant %+v", got, want)
	}
	if again := StripPod(got); !reflect.DeepEqual(again, got) {
		t.Error("StripPod is not idempotent")
	}
	if k8s.ProxyInboundPort(got) != 4143 || k8s.PodOwner(got) != (k8s.Owner{Kind: "deployment", Name: "web"}) {
		t.Error("stripped pod lost what the helpers read")
	}
}

// TestKubeStore runs the informer-backed store over a fake clientset: the
// initial objects arrive as additions, API changes as updates and
// deletions, pods are stored stripped, and the indexes answer queries.
func TestKubeStore(t *testing.T) {
	port := int32(8080)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "emojivoto",
			Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: "{...}", "keep": "me"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10", "fd00::a"}},
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abc", Namespace: "emojivoto", Labels: map[string]string{k8s.ServiceNameLabel: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Port: &port}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.7"}}},
	}
	client := fake.NewClientset(svc, slice, fullPod())

	st, err := NewKube(client, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
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
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()
	testkit.EventuallyTrue(t, 30*time.Second, "sync", st.HasSynced)

	got := rec.take()
	slices.Sort(got)
	assertEvents(t, "initial", got, []string{
		"added EndpointSlice/emojivoto/web-abc",
		"added Pod/emojivoto/web-5d8f-x",
		"added Service/emojivoto/web",
	})

	s, ok := st.Service("emojivoto", "web")
	if !ok {
		t.Fatal("service missing")
	}
	if _, ok := s.Annotations[corev1.LastAppliedConfigAnnotation]; ok || s.Annotations["keep"] != "me" {
		t.Errorf("service annotations = %v", s.Annotations)
	}
	for _, ip := range []string{"10.96.0.10", "fd00::a", "fd00:0::a"} {
		if got := st.ServicesByIP(netip.MustParseAddr(ip)); len(got) != 1 {
			t.Errorf("ServicesByIP(%s) = %d services", ip, len(got))
		}
	}
	if got := st.EndpointSlices("emojivoto", "web"); len(got) != 1 {
		t.Errorf("EndpointSlices = %d", len(got))
	}
	pods := st.PodsByIP(netip.MustParseAddr("10.42.0.7"))
	if len(pods) != 1 {
		t.Fatalf("PodsByIP = %d pods", len(pods))
	}
	if !reflect.DeepEqual(pods[0], StripPod(fullPod())) {
		t.Errorf("cached pod is not stripped:\n%+v", pods[0])
	}

	// Update: the pod moves to another IP.
	pod := fullPod()
	pod.Status.PodIP, pod.Status.PodIPs = "10.42.0.9", []corev1.PodIP{{IP: "10.42.0.9"}}
	if _, err := client.CoreV1().Pods("emojivoto").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyTrue(t, 30*time.Second, "pod update", func() bool { return len(st.PodsByIP(netip.MustParseAddr("10.42.0.9"))) == 1 })
	if len(st.PodsByIP(netip.MustParseAddr("10.42.0.7"))) != 0 {
		t.Error("old pod IP still indexed")
	}
	assertEvents(t, "update", rec.take(), []string{"updated Pod/emojivoto/web-5d8f-x"})

	// Deletions.
	if err := client.DiscoveryV1().EndpointSlices("emojivoto").Delete(ctx, "web-abc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Services("emojivoto").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyTrue(t, 30*time.Second, "deletions", func() bool {
		_, ok := st.Service("emojivoto", "web")
		return !ok && len(st.EndpointSlices("emojivoto", "web")) == 0
	})
	got = rec.take()
	slices.Sort(got)
	assertEvents(t, "delete", got, []string{"deleted EndpointSlice/emojivoto/web-abc", "deleted Service/emojivoto/web"})

	// Host-network pods are not indexed by IP.
	hn := fullPod()
	hn.Name, hn.Spec.HostNetwork = "hn", true
	hn.Status.PodIP, hn.Status.PodIPs = "192.168.1.5", []corev1.PodIP{{IP: "192.168.1.5"}}
	if _, err := client.CoreV1().Pods("emojivoto").Create(ctx, hn, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyTrue(t, 30*time.Second, "host-network pod", func() bool { _, ok := st.Pod("emojivoto", "hn"); return ok })
	if len(st.PodsByIP(netip.MustParseAddr("192.168.1.5"))) != 0 {
		t.Error("host-network pod indexed by IP")
	}
}
