package tap

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/linkerd-go/linkerd/pkg/proxyenv"
	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

// pod is a running pod of ns owned by the ReplicaSet of deployment deploy
// ("" for none), meshed unless proxy is false, with tap when tap is true.
func pod(ns, name, deploy, ip string, proxy, tap bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{}},
		Spec:       corev1.PodSpec{ServiceAccountName: "web", Containers: []corev1.Container{{Name: "app"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	if deploy != "" {
		yes := true
		p.Labels["pod-template-hash"] = "abc"
		p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: deploy + "-abc", Controller: &yes}}
	}
	if proxy {
		c := corev1.Container{Name: "linkerd-proxy"}
		if tap {
			c.Env = []corev1.EnvVar{{Name: proxyenv.TapSvcName, Value: "tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"}}
		}
		p.Spec.Containers = append(p.Spec.Containers, c)
	}
	return p
}

func TestResolve(t *testing.T) {
	ns := func(n string) *corev1.Namespace { return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}} }
	deploy := func(n, name string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: name}}
	}
	pending := pod("demo", "web-3", "web", "", true, true)
	pending.Status.Phase = corev1.PodPending
	otherCP := pod("demo", "web-4", "web", "10.0.0.4", true, true)
	otherCP.Labels["linkerd.io/control-plane-ns"] = "mesh"
	objs := []runtime.Object{
		ns("demo"), ns("old"), ns("bare"),
		deploy("demo", "web"), deploy("demo", "voting"), deploy("old", "web"), deploy("bare", "web"), deploy("demo", "idle"),
		pod("demo", "web-1", "web", "10.0.0.1", true, true),
		pod("demo", "web-2", "web", "10.0.0.2", true, true),
		pending, otherCP,
		pod("demo", "voting-1", "voting", "10.0.0.5", true, false),
		pod("old", "web-1", "web", "10.0.1.1", true, false),
		pod("old", "web-2", "web", "10.0.1.2", true, false),
		pod("bare", "web-1", "web", "10.0.2.1", false, false),
		pod("demo", "solo", "", "10.0.0.9", true, true),
	}
	r := &Resolver{Client: fake.NewClientset(objs...), ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local"}
	id := func(ns, cp string) string { return "web." + ns + ".serviceaccount.identity." + cp + ".cluster.local" }
	tests := []struct {
		kind, ns, name string
		want           []string // "name addr identity"
		code           codes.Code
		msg            []string // substrings of the error
	}{
		{kind: "deployment", ns: "demo", name: "web", want: []string{
			"web-1 10.0.0.1:4190 " + id("demo", "linkerd"),
			"web-2 10.0.0.2:4190 " + id("demo", "linkerd"),
			"web-4 10.0.0.4:4190 " + id("demo", "mesh"),
		}},
		{kind: "pod", ns: "demo", name: "solo", want: []string{"solo 10.0.0.9:4190 " + id("demo", "linkerd")}},
		{kind: "namespace", name: "demo", want: []string{
			"solo 10.0.0.9:4190 " + id("demo", "linkerd"),
			"web-1 10.0.0.1:4190 " + id("demo", "linkerd"),
			"web-2 10.0.0.2:4190 " + id("demo", "linkerd"),
			"web-4 10.0.0.4:4190 " + id("demo", "mesh"),
		}},
		{kind: "deployment", ns: "old", name: "web", code: codes.FailedPrecondition,
			msg: []string{"no pods to tap for deployment/web", "tap not enabled on web-1, web-2", "kubectl rollout restart deployment/web -n old"}},
		{kind: "namespace", name: "old", code: codes.FailedPrecondition,
			msg: []string{"no pods to tap for namespace/old", "tap not enabled", "kubectl rollout restart deploy -n old"}},
		{kind: "deployment", ns: "demo", name: "voting", code: codes.FailedPrecondition, msg: []string{"tap not enabled on voting-1"}},
		{kind: "deployment", ns: "bare", name: "web", code: codes.FailedPrecondition, msg: []string{"no pods to tap for deployment/web", "not meshed"}},
		{kind: "deployment", ns: "demo", name: "idle", code: codes.FailedPrecondition, msg: []string{"no pods to tap for deployment/idle", "no running pods"}},
		{kind: "deployment", ns: "demo", name: "nope", code: codes.NotFound, msg: []string{"deployment nope not found in namespace demo"}},
		{kind: "statefulset", ns: "demo", name: "db", code: codes.NotFound, msg: []string{"statefulset db not found in namespace demo"}},
		{kind: "pod", ns: "demo", name: "nope", code: codes.NotFound, msg: []string{"pod nope not found in namespace demo"}},
		{kind: "namespace", name: "nope", code: codes.NotFound, msg: []string{"namespace nope not found"}},
		{kind: "service", ns: "demo", name: "web", code: codes.InvalidArgument, msg: []string{"cannot tap service"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.ns+"/"+tt.name, func(t *testing.T) {
			got, err := r.Resolve(context.Background(), tt.kind, tt.ns, tt.name)
			if tt.code != codes.OK {
				st, _ := status.FromError(err)
				if st.Code() != tt.code {
					t.Fatalf("error %v, want code %v", err, tt.code)
				}
				for _, m := range tt.msg {
					if !strings.Contains(st.Message(), m) {
						t.Errorf("error %q lacks %q", st.Message(), m)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, p := range got {
				if p.Namespace != tt.ns && tt.kind != "namespace" {
					t.Errorf("pod %s in namespace %s", p.Name, p.Namespace)
				}
				lines = append(lines, p.Name+" "+p.Addr+" "+p.Identity)
			}
			if !reflect.DeepEqual(lines, tt.want) {
				t.Errorf("got  %q\nwant %q", lines, tt.want)
			}
		})
	}
}

func TestMatchTo(t *testing.T) {
	ev := func(dir string, meta map[string]string) *tapv1.TapEvent {
		return &tapv1.TapEvent{Direction: dir, DestinationMeta: meta}
	}
	voting := map[string]string{"namespace": "demo", "deployment": "voting", "pod": "voting-1", "service": "voting-svc"}
	tests := []struct {
		name string
		ev   *tapv1.TapEvent
		to   *vizv1.Resource
		want bool
	}{
		{"no filter", ev("inbound", nil), nil, true},
		{"deployment", ev("outbound", voting), &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "voting"}, true},
		{"other deployment", ev("outbound", voting), &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "items"}, false},
		{"other namespace", ev("outbound", voting), &vizv1.Resource{Kind: "deployment", Namespace: "prod", Name: "voting"}, false},
		{"pod", ev("outbound", voting), &vizv1.Resource{Kind: "pod", Namespace: "demo", Name: "voting-1"}, true},
		{"service", ev("outbound", voting), &vizv1.Resource{Kind: "service", Namespace: "demo", Name: "voting-svc"}, true},
		{"namespace", ev("outbound", voting), &vizv1.Resource{Kind: "namespace", Name: "demo"}, true},
		{"inbound never", ev("inbound", voting), &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "voting"}, false},
		{"no destination metadata", ev("outbound", nil), &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "voting"}, false},
		{"authority kind", ev("outbound", voting), &vizv1.Resource{Kind: "authority", Namespace: "demo", Name: "voting"}, false},
	}
	for _, tt := range tests {
		if got := MatchTo(tt.ev, tt.to); got != tt.want {
			t.Errorf("%s: MatchTo = %v, want %v", tt.name, got, tt.want)
		}
	}
}
