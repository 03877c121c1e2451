package k8s

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

func ptr[T any](v T) *T { return &v }

func TestProxyInboundPort(t *testing.T) {
	t.Parallel()
	withEnv := func(native bool, env ...corev1.EnvVar) *corev1.Pod {
		c := corev1.Container{Name: ProxyContainerName, Env: env}
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
		if native {
			pod.Spec.InitContainers = append(pod.Spec.InitContainers, c)
		} else {
			pod.Spec.Containers = append(pod.Spec.Containers, c)
		}
		return pod
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want uint32
	}{
		{"no proxy", &corev1.Pod{}, 4143},
		{"no env", withEnv(false), 4143},
		{"ipv4", withEnv(false, corev1.EnvVar{Name: proxyenv.InboundListenAddr, Value: "0.0.0.0:5143"}), 5143},
		{"ipv6 native sidecar", withEnv(true, corev1.EnvVar{Name: "OTHER", Value: "1"}, corev1.EnvVar{Name: proxyenv.InboundListenAddr, Value: "[::]:6143"}), 6143},
		{"garbage", withEnv(false, corev1.EnvVar{Name: proxyenv.InboundListenAddr, Value: "nope"}), 4143},
		{"bad port", withEnv(false, corev1.EnvVar{Name: proxyenv.InboundListenAddr, Value: "0.0.0.0:0"}), 4143},
	}
	for _, tt := range tests {
		if got := ProxyInboundPort(tt.pod); got != tt.want {
			t.Errorf("%s: ProxyInboundPort = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestPodOwner(t *testing.T) {
	t.Parallel()
	owner := func(kind, name string, controller bool) metav1.OwnerReference {
		return metav1.OwnerReference{Kind: kind, Name: name, Controller: ptr(controller)}
	}
	tests := []struct {
		name   string
		labels map[string]string
		refs   []metav1.OwnerReference
		want   Owner
	}{
		{name: "none"},
		{name: "deployment", labels: map[string]string{PodTemplateHashLabel: "5d8f7c9b6d"},
			refs: []metav1.OwnerReference{owner("ReplicaSet", "web-5d8f7c9b6d", true)}, want: Owner{"deployment", "web"}},
		{name: "replicaset without hash", refs: []metav1.OwnerReference{owner("ReplicaSet", "web-5d8f7c9b6d", true)}, want: Owner{"replicaset", "web-5d8f7c9b6d"}},
		{name: "replicaset with other hash", labels: map[string]string{PodTemplateHashLabel: "abc"},
			refs: []metav1.OwnerReference{owner("ReplicaSet", "web-5d8f7c9b6d", true)}, want: Owner{"replicaset", "web-5d8f7c9b6d"}},
		{name: "statefulset", refs: []metav1.OwnerReference{owner("StatefulSet", "db", true)}, want: Owner{"statefulset", "db"}},
		{name: "daemonset", refs: []metav1.OwnerReference{owner("DaemonSet", "agent", true)}, want: Owner{"daemonset", "agent"}},
		{name: "job", refs: []metav1.OwnerReference{owner("Job", "migrate", true)}, want: Owner{"job", "migrate"}},
		{name: "controller wins", refs: []metav1.OwnerReference{owner("ConfigMap", "x", false), owner("StatefulSet", "db", true)}, want: Owner{"statefulset", "db"}},
		{name: "first without controller", refs: []metav1.OwnerReference{{Kind: "Job", Name: "j"}}, want: Owner{"job", "j"}},
	}
	for _, tt := range tests {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: tt.labels, OwnerReferences: tt.refs}}
		if got := PodOwner(pod); got != tt.want {
			t.Errorf("%s: PodOwner = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestContainerPortNamesAndMeshed(t *testing.T) {
	t.Parallel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{ControllerNSLabel: "linkerd"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: ProxyContainerName, Ports: []corev1.ContainerPort{{Name: "linkerd-admin", ContainerPort: 4191}}}},
			Containers:     []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {ContainerPort: 9000}}}},
		},
	}
	got := ContainerPortNames(pod)
	if len(got) != 2 || got["http"] != 8080 || got["linkerd-admin"] != 4191 {
		t.Errorf("ContainerPortNames = %v", got)
	}
	if !IsMeshedBy(pod, "linkerd") || IsMeshedBy(pod, "other") || IsMeshedBy(&corev1.Pod{}, "") {
		t.Error("IsMeshedBy wrong")
	}
	if ServiceAccountName(pod) != "default" {
		t.Error("ServiceAccountName default")
	}
	pod.Spec.ServiceAccountName = "web"
	if ServiceAccountName(pod) != "web" {
		t.Error("ServiceAccountName")
	}
}
