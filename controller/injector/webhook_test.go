package injector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/linkerd-go/linkerd/pkg/inject"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

func TestWebhook(t *testing.T) {
	const ctlNS = "linkerd"
	values := "identityTrustAnchorsPEM: " + mustJSONString(t, trustAnchors(t)) + "\nlinkerdVersion: stable-9.9.9\n"
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: k8s.ConfigMapName, Namespace: ctlNS, ResourceVersion: "1"},
			Data: map[string]string{k8s.ConfigValuesKey: values}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshed", UID: "ns-uid",
			Annotations: map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectEnabled}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
	)
	inj := startInjector(t, client, ctlNS)
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: inj.tlsConfig()}, Timeout: 10 * time.Second}

	isController := true
	owned := func(p *corev1.Pod) *corev1.Pod {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d4b9", UID: "rs-uid", Controller: &isController}}
		p.Labels = map[string]string{k8s.PodTemplateHashLabel: "5d4b9", "app": "web"}
		return p
	}
	pod := func(ns string, edit func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{GenerateName: "web-5d4b9-", Namespace: ns},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/web",
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
		}
		owned(p)
		if edit != nil {
			edit(p)
		}
		return p
	}

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
			name: "namespace enabled", path: "/", req: podRequest(t, pod("meshed", nil)),
			wantPatch: true, wantEvent: "Injected",
			checkPatch: func(t *testing.T, p *corev1.Pod) {
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
			req: podRequest(t, pod("plain", func(p *corev1.Pod) {
				p.Annotations = map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectIngress, inject.ProxyLogLevelAnnotation: "debug"}
			})),
			wantPatch: true,
			checkPatch: func(t *testing.T, p *corev1.Pod) {
				env := map[string]string{}
				for _, e := range p.Spec.Containers[0].Env {
					env[e.Name] = e.Value
				}
				if env["LINKERD2_PROXY_INGRESS_MODE"] != "true" || !strings.HasPrefix(env["LINKERD2_PROXY_LOG"], "debug") {
					t.Errorf("env = %v", env)
				}
			},
		},
		{name: "not annotated", path: "/", req: podRequest(t, pod("plain", nil))},
		{
			name: "host network", path: "/", wantEvent: "InjectionSkipped",
			req: podRequest(t, pod("meshed", func(p *corev1.Pod) { p.Spec.HostNetwork = true })),
		},
		{
			name: "pod disabled", path: "/", wantEvent: "InjectionSkipped",
			req: podRequest(t, pod("meshed", func(p *corev1.Pod) {
				p.Annotations = map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectDisabled}
			})),
		},
		{
			name: "unknown namespace is admitted unchanged", path: "/", wantWarn: "not injected",
			req: podRequest(t, pod("nowhere", nil)),
		},
		{
			name: "undecodable pod is admitted unchanged", path: "/", wantWarn: "decoding the pod",
			req: func() *admissionv1.AdmissionRequest {
				r := podRequest(t, pod("meshed", nil))
				r.Object.Raw = []byte(`{"spec":{"containers":"nope"}}`)
				return r
			}(),
		},
		{
			name: "update is not our business", path: "/",
			req: func() *admissionv1.AdmissionRequest {
				r := podRequest(t, pod("meshed", nil))
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
			resp := postReview(t, httpc, inj.URL+tt.path, tt.req)
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
		resp, err := httpc.Post(inj.URL+"/", "application/json", strings.NewReader(`{"kind":"AdmissionReview"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status = %d, want 400", resp.StatusCode)
		}
	})
}

// TestWebhookWithoutConfig admits pods unchanged when linkerd-config is missing.
func TestWebhookWithoutConfig(t *testing.T) {
	client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshed",
		Annotations: map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectEnabled}}})
	inj := startInjector(t, client, "linkerd")
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: inj.tlsConfig()}, Timeout: 10 * time.Second}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare", Namespace: "meshed"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "x"}}}}
	resp := postReview(t, httpc, inj.URL+"/", podRequest(t, p))
	if !resp.Allowed || len(resp.Patch) > 0 || !strings.Contains(strings.Join(resp.Warnings, " "), k8s.ConfigMapName) {
		t.Errorf("response = allowed %v, patch %q, warnings %q; want unchanged with a warning about %s",
			resp.Allowed, resp.Patch, resp.Warnings, k8s.ConfigMapName)
	}
	ev := waitEvent(t, client, metav1.NamespaceDefault, 0, "InjectionFailed")
	if ev.InvolvedObject.Kind != "Namespace" || ev.InvolvedObject.Name != "meshed" || ev.Type != corev1.EventTypeWarning {
		t.Errorf("event = %+v, want a warning on the namespace", ev)
	}
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

func postReview(t *testing.T, c *http.Client, url string, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	t.Helper()
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &review); err != nil {
		t.Fatal(err)
	}
	if review.Kind != "AdmissionReview" || review.APIVersion != "admission.k8s.io/v1" || review.Response == nil {
		t.Fatalf("bad review: %s", data)
	}
	return review.Response
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
