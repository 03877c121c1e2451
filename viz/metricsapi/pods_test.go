package metricsapi

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestKubePods(t *testing.T) {
	yes := true
	pod := func(name string, phase corev1.PodPhase, owner metav1.OwnerReference, containers ...string) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", Labels: map[string]string{"pod-template-hash": "5d8f9"}},
			Status:     corev1.PodStatus{Phase: phase, PodIP: "10.42.0.9"},
		}
		if owner.Name != "" {
			p.OwnerReferences = []metav1.OwnerReference{owner}
		}
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		}
		return p
	}
	rs := metav1.OwnerReference{Kind: "ReplicaSet", Name: "web-5d8f9", Controller: &yes}
	sts := metav1.OwnerReference{Kind: "StatefulSet", Name: "db", Controller: &yes}
	kube := fake.NewClientset(
		pod("web-5d8f9-aaaaa", corev1.PodRunning, rs, "web", "linkerd-proxy"),
		pod("web-5d8f9-bbbbb", corev1.PodFailed, rs, "web", "linkerd-proxy"),
		pod("db-0", corev1.PodRunning, sts, "db"),
		pod("bare", corev1.PodPending, metav1.OwnerReference{}, "x"),
	)
	pods, err := KubePods{Client: kube}.Pods(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Pod{
		"web-5d8f9-aaaaa": {Namespace: "demo", Name: "web-5d8f9-aaaaa", OwnerKind: "deployment", OwnerName: "web", Status: "Running", IP: "10.42.0.9", Meshed: true},
		"web-5d8f9-bbbbb": {Namespace: "demo", Name: "web-5d8f9-bbbbb", OwnerKind: "deployment", OwnerName: "web", Status: "Failed", IP: "10.42.0.9", Meshed: true},
		"db-0":            {Namespace: "demo", Name: "db-0", OwnerKind: "statefulset", OwnerName: "db", Status: "Running", IP: "10.42.0.9"},
		"bare":            {Namespace: "demo", Name: "bare", Status: "Pending", IP: "10.42.0.9"},
	}
	if len(pods) != len(want) {
		t.Fatalf("got %d pods, want %d: %+v", len(pods), len(want), pods)
	}
	for _, p := range pods {
		if p != want[p.Name] {
			t.Errorf("pod %s = %+v, want %+v", p.Name, p, want[p.Name])
		}
	}
}
