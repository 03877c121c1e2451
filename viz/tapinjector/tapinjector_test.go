package tapinjector

import (
	"context"
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/linkerd-go/linkerd/pkg/inject"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
	"github.com/linkerd-go/linkerd/viz/tap"
)

const tapID = "tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"

func meshedPod(mod func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: "demo", Annotations: map[string]string{"linkerd.io/inject": "enabled"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "web", Image: "web"},
			{Name: "linkerd-proxy", Image: "proxy", Env: []corev1.EnvVar{{Name: "LINKERD2_PROXY_LOG", Value: "info"}}},
		}},
	}
	if mod != nil {
		mod(p)
	}
	return p
}

func TestAdmit(t *testing.T) {
	disabledNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "quiet", Annotations: map[string]string{tap.DisableTapAnnotation: "true"}}}
	demoNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
	tests := []struct {
		name      string
		ns        string
		op        admissionv1.Operation
		pod       *corev1.Pod
		wantPatch bool
		proxyIdx  int  // index of the proxy container in the patched pod
		initProxy bool // the proxy is a native sidecar
	}{
		{name: "meshed pod", ns: "demo", op: admissionv1.Create, pod: meshedPod(nil), wantPatch: true, proxyIdx: 1},
		{name: "meshed pod without env or annotations", ns: "demo", op: admissionv1.Create, wantPatch: true, proxyIdx: 1,
			pod: meshedPod(func(p *corev1.Pod) { p.Annotations = nil; p.Spec.Containers[1].Env = nil })},
		{name: "native sidecar proxy", ns: "demo", op: admissionv1.Create, wantPatch: true, proxyIdx: 0, initProxy: true,
			pod: meshedPod(func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{p.Spec.Containers[1]}
				p.Spec.Containers = p.Spec.Containers[:1]
			})},
		{name: "not meshed", ns: "demo", op: admissionv1.Create, pod: meshedPod(func(p *corev1.Pod) { p.Spec.Containers = p.Spec.Containers[:1] })},
		{name: "pod disables tap", ns: "demo", op: admissionv1.Create,
			pod: meshedPod(func(p *corev1.Pod) { p.Annotations[tap.DisableTapAnnotation] = "true" })},
		{name: "namespace disables tap", ns: "quiet", op: admissionv1.Create, pod: meshedPod(func(p *corev1.Pod) { p.Namespace = "quiet" })},
		{name: "tap already enabled", ns: "demo", op: admissionv1.Create,
			pod: meshedPod(func(p *corev1.Pod) {
				p.Spec.Containers[1].Env = append(p.Spec.Containers[1].Env, corev1.EnvVar{Name: proxyenv.TapSvcName, Value: tapID})
			})},
		{name: "update", ns: "demo", op: admissionv1.Update, pod: meshedPod(nil)},
	}
	s := &Server{TapIdentity: tapID, Client: fake.NewClientset(disabledNS, demoNS)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.pod)
			if err != nil {
				t.Fatal(err)
			}
			resp := s.Admit(context.Background(), &admissionv1.AdmissionRequest{
				Resource: podResource, Operation: tt.op, Namespace: tt.ns, Object: runtime.RawExtension{Raw: raw},
			})
			if !resp.Allowed {
				t.Fatalf("pod denied: %v", resp.Result)
			}
			if !tt.wantPatch {
				if resp.Patch != nil {
					t.Fatalf("unexpected patch %s", resp.Patch)
				}
				return
			}
			pod := apply(t, raw, resp.Patch)
			proxy := pod.Spec.Containers[tt.proxyIdx]
			if tt.initProxy {
				proxy = pod.Spec.InitContainers[tt.proxyIdx]
			}
			if !tap.TapEnabled(pod) || pod.Annotations[tap.TapEnabledAnnotation] != "true" {
				t.Fatalf("tap not enabled by the patch %s: annotations %v, proxy env %v", resp.Patch, pod.Annotations, proxy.Env)
			}
			last := proxy.Env[len(proxy.Env)-1]
			if last.Name != proxyenv.TapSvcName || last.Value != tapID {
				t.Errorf("proxy env %v: want %s=%s last", proxy.Env, proxyenv.TapSvcName, tapID)
			}
			if len(tt.pod.Annotations) > 0 && len(pod.Annotations) != len(tt.pod.Annotations)+1 {
				t.Errorf("annotations %v: the pod's were %v, want them kept", pod.Annotations, tt.pod.Annotations)
			}
		})
	}
}

func apply(t *testing.T, raw, patch []byte) *corev1.Pod {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var p inject.Patch
	if err := json.Unmarshal(patch, &p); err != nil {
		t.Fatalf("not a JSON patch: %v: %s", err, patch)
	}
	doc, err := p.Apply(doc)
	if err != nil {
		t.Fatalf("applying %s: %v", patch, err)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(out, pod); err != nil {
		t.Fatal(err)
	}
	return pod
}
