package injector_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/linkerd-go/linkerd/controller/webhook/webhooktest"
	"github.com/linkerd-go/linkerd/pkg/inject"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// fakeCluster is a fake API with linkerd-config in ctlNS, a namespace
// "meshed" annotated for injection and a namespace "plain".
func fakeCluster(t *testing.T, ctlNS string) *fake.Clientset {
	t.Helper()
	values := "identityTrustAnchorsPEM: " + mustJSONString(t, trustAnchors(t)) + "\nlinkerdVersion: stable-9.9.9\n"
	return fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: k8s.ConfigMapName, Namespace: ctlNS, ResourceVersion: "1"},
			Data: map[string]string{k8s.ConfigValuesKey: values}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshed", UID: "ns-uid",
			Annotations: map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectEnabled}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
	)
}

// ownedPod is a pod of ReplicaSet web-5d4b9 in ns being created, changed by
// edit (if not nil).
func ownedPod(ns string, edit func(*corev1.Pod)) *corev1.Pod {
	isController := true
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-5d4b9-", Namespace: ns,
			Labels:          map[string]string{k8s.PodTemplateHashLabel: "5d4b9", "app": "web"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d4b9", UID: "rs-uid", Controller: &isController}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/web",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
	}
	if edit != nil {
		edit(p)
	}
	return p
}

func TestWebhook(t *testing.T) {
	const ctlNS = "linkerd"
	client := fakeCluster(t, ctlNS)
	inj := startInjector(t, client, ctlNS, nil)

	tests := []struct {
		name       string
		path       string
		req        *admissionv1.AdmissionRequest
		wantPatch  bool
		wantEvent  string // reason of the event expected in the namespace
		wantWarn   string
		checkPatch func(t *testing.T, pod *corev1.Pod)
	}{
		{
			name: "namespace enabled", path: "/", req: podRequest(t, ownedPod("meshed", nil)),
			wantPatch: true, wantEvent: "Injected",
			checkPatch: func(t *testing.T, p *corev1.Pod) {
				t.Helper()
				if p.Spec.Containers[0].Name != k8s.ProxyContainerName || p.Spec.InitContainers[0].Name != k8s.InitContainerName {
					t.Errorf("containers %v, init %v", p.Spec.Containers, p.Spec.InitContainers)
				}
				if p.Labels[k8s.ProxyDeploymentLabel] != "web" || p.Annotations[k8s.CreatedByAnnotation] != "linkerd/proxy-injector test" ||
					p.Annotations[k8s.ProxyVersionAnnotation] != "stable-9.9.9" {
					t.Errorf("metadata: labels %v annotations %v", p.Labels, p.Annotations)
				}
			},
		},
		{
			name: "pod enabled, ingress, on /inject", path: "/inject",
			req: podRequest(t, ownedPod("plain", func(p *corev1.Pod) {
				p.Annotations = map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectIngress, inject.ProxyLogLevelAnnotation: "debug"}
			})),
			wantPatch: true,
			checkPatch: func(t *testing.T, p *corev1.Pod) {
				t.Helper()
				env := map[string]string{}
				for _, e := range p.Spec.Containers[0].Env {
					env[e.Name] = e.Value
				}
				if env["LINKERD2_PROXY_INGRESS_MODE"] != "true" || !strings.HasPrefix(env["LINKERD2_PROXY_LOG"], "debug") {
					t.Errorf("env = %v", env)
				}
			},
		},
		{name: "not annotated", path: "/", req: podRequest(t, ownedPod("plain", nil))},
		{
			name: "host network", path: "/", wantEvent: "InjectionSkipped",
			req: podRequest(t, ownedPod("meshed", func(p *corev1.Pod) { p.Spec.HostNetwork = true })),
		},
		{
			name: "pod disabled", path: "/", wantEvent: "InjectionSkipped",
			req: podRequest(t, ownedPod("meshed", func(p *corev1.Pod) {
				p.Annotations = map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectDisabled}
			})),
		},
		{
			name: "unknown namespace is admitted unchanged", path: "/", wantWarn: "not injected",
			req: podRequest(t, ownedPod("nowhere", nil)),
		},
		{
			name: "undecodable pod is admitted unchanged", path: "/", wantWarn: "decoding the pod",
			req: func() *admissionv1.AdmissionRequest {
				r := podRequest(t, ownedPod("meshed", nil))
				r.Object.Raw = []byte(`{"spec":{"containers":"nope"}}`)
				return r
			}(),
		},
		{
			name: "update is not our business", path: "/",
			req: func() *admissionv1.AdmissionRequest {
				r := podRequest(t, ownedPod("meshed", nil))
				r.Operation = admissionv1.Update
				return r
			}(),
		},
		{
			name: "other resources pass", path: "/",
			req: &admissionv1.AdmissionRequest{UID: "svc", Namespace: "meshed", Operation: admissionv1.Create,
				Resource: metav1.GroupVersionResource{Version: "v1", Resource: "services"},
				Object:   runtime.RawExtension{Raw: []byte(`{"kind":"Service"}`)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := eventCount(t, client, tt.req.Namespace)
			resp := inj.admit(t, tt.path, tt.req)
			if resp.UID != tt.req.UID {
				t.Errorf("UID = %q, want %q", resp.UID, tt.req.UID)
			}
			if !resp.Allowed {
				t.Fatalf("not allowed: %+v", resp.Result)
			}
			if got := len(resp.Patch) > 0; got != tt.wantPatch {
				t.Fatalf("patched = %v, want %v (warnings %q)", got, tt.wantPatch, resp.Warnings)
			}
			if tt.wantWarn != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), tt.wantWarn) {
				t.Errorf("warnings = %q, want one containing %q", resp.Warnings, tt.wantWarn)
			}
			if tt.wantWarn == "" && len(resp.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", resp.Warnings)
			}
			if tt.wantPatch {
				if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
					t.Errorf("patchType = %v", resp.PatchType)
				}
				tt.checkPatch(t, applyPatch(t, tt.req.Object.Raw, resp.Patch))
			}
			if tt.wantEvent != "" {
				ev := waitEvent(t, client, tt.req.Namespace, before, tt.wantEvent)
				if ev.InvolvedObject.Kind != "ReplicaSet" || ev.InvolvedObject.Name != "web-5d4b9" || ev.InvolvedObject.UID != "rs-uid" {
					t.Errorf("event is about %+v, want the pod's ReplicaSet", ev.InvolvedObject)
				}
			}
		})
	}

	t.Run("not an AdmissionReview", func(t *testing.T) {
		if code, _, raw := webhooktest.Post(t, inj.Client, inj.URL+"/", []byte(`{"kind":"AdmissionReview"}`)); code != http.StatusBadRequest {
			t.Errorf("HTTP %d (%s), want 400", code, raw)
		}
	})
}

// TestWebhookWithoutConfig admits pods unchanged when linkerd-config is missing.
func TestWebhookWithoutConfig(t *testing.T) {
	client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshed",
		Annotations: map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectEnabled}}})
	inj := startInjector(t, client, "linkerd", nil)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare", Namespace: "meshed"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "x"}}}}
	resp := inj.admit(t, "/", podRequest(t, p))
	if !resp.Allowed || len(resp.Patch) > 0 || !strings.Contains(strings.Join(resp.Warnings, " "), k8s.ConfigMapName) {
		t.Errorf("response = allowed %v, patch %q, warnings %q; want unchanged with a warning about %s",
			resp.Allowed, resp.Patch, resp.Warnings, k8s.ConfigMapName)
	}
	ev := waitEvent(t, client, metav1.NamespaceDefault, 0, "InjectionFailed")
	if ev.InvolvedObject.Kind != "Namespace" || ev.InvolvedObject.Name != "meshed" || ev.Type != corev1.EventTypeWarning {
		t.Errorf("event = %+v, want a warning on the namespace", ev)
	}
}

// TestWebhookPanic: a panic of the injector admits the pod unchanged with
// a warning (a mutating webhook never blocks a pod), and counts an error.
func TestWebhookPanic(t *testing.T) {
	client := fakeCluster(t, "linkerd")
	client.PrependReactor("get", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) { panic("boom") })
	reg := prometheus.NewRegistry()
	inj := startInjector(t, client, "linkerd", reg)
	resp := inj.admit(t, "/", podRequest(t, ownedPod("meshed", nil)))
	if !resp.Allowed || len(resp.Patch) > 0 || len(resp.Warnings) != 1 ||
		!strings.Contains(resp.Warnings[0], "internal error") || !strings.Contains(resp.Warnings[0], "boom") {
		t.Errorf("response = allowed %v, patch %q, warnings %q; want unchanged with a warning about the panic", resp.Allowed, resp.Patch, resp.Warnings)
	}
	if got := counter(t, reg, "proxy_inject_admission_responses_total", map[string]string{"namespace": "meshed", "outcome": "error", "skip": "true"}); got != 1 {
		t.Errorf("error responses counted: %v, want 1", got)
	}
}

// TestWebhookDryRun: a dry run has no side effects: the pod is answered as
// usual, but no event is recorded, whether it is injected or not.
func TestWebhookDryRun(t *testing.T) {
	client := fakeCluster(t, "linkerd")
	inj := startInjector(t, client, "linkerd", nil)
	dryRun := func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionRequest {
		yes := true
		r.DryRun = &yes
		return r
	}
	if resp := inj.admit(t, "/", dryRun(podRequest(t, ownedPod("meshed", nil)))); len(resp.Patch) == 0 {
		t.Errorf("dry run not injected: warnings %q", resp.Warnings)
	}
	if resp := inj.admit(t, "/", dryRun(podRequest(t, ownedPod("nowhere", nil)))); len(resp.Warnings) == 0 {
		t.Error("failed dry run without a warning")
	}
	// Events are written in order: once the real injection's event is
	// there, any of the dry runs would be too.
	inj.admit(t, "/", podRequest(t, ownedPod("meshed", nil)))
	waitEvent(t, client, "meshed", 0, "Injected")
	if n, m := eventCount(t, client, "meshed"), eventCount(t, client, "nowhere"); n != 1 || m != 0 {
		t.Errorf("%d events in meshed and %d in nowhere, want 1 (the real injection) and 0", n, m)
	}
}

// counter is the value of the counter name with labels (a subset of its
// labels), summed over the series that match.
func counter(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func podRequest(t *testing.T, p *corev1.Pod) *admissionv1.AdmissionRequest {
	t.Helper()
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return &admissionv1.AdmissionRequest{
		UID:       types.UID("uid-" + p.Namespace + "-" + p.GenerateName + p.Name),
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: p.Namespace,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}
}

// applyPatch applies a JSON patch to a raw pod with package inject's applier.
func applyPatch(t *testing.T, raw, patch []byte) *corev1.Pod {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var p inject.Patch
	if err := json.Unmarshal(patch, &p); err != nil {
		t.Fatalf("patch is not a JSON patch: %v: %s", err, patch)
	}
	doc, err := p.Apply(doc)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(doc)
	pod := &corev1.Pod{}
	if err := json.Unmarshal(out, pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

func eventCount(t *testing.T, client *fake.Clientset, ns string) int {
	t.Helper()
	list, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

// waitEvent waits (bounded) for a new event with the reason in ns; events
// are written in the background.
func waitEvent(t *testing.T, client *fake.Clientset, ns string, before int, reason string) corev1.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) > before {
			for _, ev := range list.Items {
				if ev.Reason == reason {
					return ev
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event in namespace %s (events: %+v)", reason, ns, list.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustJSONString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
