package store

import (
	"context"
	"sync"
	"testing"
	"time"

	spv1alpha2 "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
)

func unstructuredProfile(name, route string, routes any) *unstructured.Unstructured {
	if routes == nil {
		routes = []any{map[string]any{"name": route, "condition": map[string]any{"method": "GET"}}}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
		"metadata": map[string]any{"name": name, "namespace": "emojivoto"},
		"spec":     map[string]any{"routes": routes},
	}}
}

// TestKubeStoreProfiles: ServiceProfiles come through the dynamic
// informer typed, with their events; one that does not convert is kept
// with the invalid annotation.
func TestKubeStoreProfiles(t *testing.T) {
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
		map[schema.GroupVersionResource]string{spv1alpha2.GroupVersionResource: "ServiceProfileList"},
		unstructuredProfile("web.emojivoto.svc.cluster.local", "first", nil))
	st, err := NewKube(fake.NewClientset(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.WatchProfiles(dyn, 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []string
	st.AddHandler(func(ev Event) {
		if ev.Kind == KindServiceProfile {
			mu.Lock()
			events = append(events, ev.Type.String()+" "+ev.Key().String())
			mu.Unlock()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = st.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	route := func() string {
		sp, ok := st.ServiceProfile("emojivoto", "web.emojivoto.svc.cluster.local")
		if !ok || len(sp.Spec.Routes) == 0 {
			return ""
		}
		return sp.Spec.Routes[0].Name
	}
	waitFor("the initial profile", func() bool { return route() == "first" })

	profiles := dyn.Resource(spv1alpha2.GroupVersionResource).Namespace("emojivoto")
	if _, err := profiles.Update(ctx, unstructuredProfile("web.emojivoto.svc.cluster.local", "second", nil), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the update", func() bool { return route() == "second" })

	// routes as a string: not a ServiceProfile, kept marked invalid.
	if _, err := profiles.Create(ctx, unstructuredProfile("bad.emojivoto.svc.cluster.local", "", "not a list"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the invalid profile", func() bool {
		sp, ok := st.ServiceProfile("emojivoto", "bad.emojivoto.svc.cluster.local")
		return ok && sp.Annotations[InvalidAnnotation] != ""
	})
	if err := profiles.Delete(ctx, "web.emojivoto.svc.cluster.local", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the deletion", func() bool { _, ok := st.ServiceProfile("emojivoto", "web.emojivoto.svc.cluster.local"); return !ok })
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"added ServiceProfile/emojivoto/web.emojivoto.svc.cluster.local",
		"updated ServiceProfile/emojivoto/web.emojivoto.svc.cluster.local",
		"added ServiceProfile/emojivoto/bad.emojivoto.svc.cluster.local",
		"deleted ServiceProfile/emojivoto/web.emojivoto.svc.cluster.local",
	}
	if len(events) != len(want) {
		t.Fatalf("events %q, want %q", events, want)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Errorf("event %d: %q, want %q", i, events[i], want[i])
		}
	}
}
