package store

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMemoryEvents(t *testing.T) {
	m := NewMemory()
	var got []Event
	m.AddHandler(func(ev Event) { got = append(got, ev) })
	svc := func(ip string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "n"}, Spec: corev1.ServiceSpec{ClusterIP: ip}}
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", Annotations: map[string]string{"x": "y"}}}

	m.Apply(svc("10.0.0.1"), pod, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ignored"}})
	m.Apply(svc("10.0.0.1")) // unchanged: no event
	m.Apply(svc("10.0.0.2"))
	m.Delete(Key{KindPod, "n", "p"}, Key{KindPod, "n", "missing"})
	m.Replace(nil)

	want := []string{"added Service/n/a", "added Pod/n/p", "updated Service/n/a", "deleted Pod/n/p", "deleted Service/n/a"}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i, ev := range got {
		if s := ev.Type.String() + " " + ev.Key().String(); s != want[i] {
			t.Errorf("event %d = %q, want %q", i, s, want[i])
		}
	}
	if old, ok := got[2].Old.(*corev1.Service); !ok || old.Spec.ClusterIP != "10.0.0.1" {
		t.Errorf("update Old = %+v", got[2].Old)
	}
	if p, ok := got[1].Object.(*corev1.Pod); !ok || len(p.Annotations) != 0 {
		t.Errorf("pod not stripped: %+v", got[1].Object)
	}
	if m.HasSynced() {
		t.Error("synced before Run/MarkSynced")
	}
	m.MarkSynced()
	if !m.HasSynced() {
		t.Error("not synced after MarkSynced")
	}
}
