package portforward

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

// The forwarding itself crosses the API server and the kubelet: the
// walkthrough (test/walkthrough, `linkerd viz stat` on a real node) runs it.

func pod(name string, phase corev1.PodPhase, ready bool, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "viz", Labels: labels},
		Status:     corev1.PodStatus{Phase: phase},
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	return p
}

func TestPick(t *testing.T) {
	api := map[string]string{"component": "metrics-api"}
	terminating := pod("api-0", corev1.PodRunning, true, api)
	terminating.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	tests := []struct {
		name    string
		pods    []runtime.Object
		want    string
		wantErr string
	}{
		{name: "ready first", pods: []runtime.Object{pod("api-a", corev1.PodRunning, false, api), pod("api-b", corev1.PodRunning, true, api)}, want: "api-b"},
		{name: "by name among ready", pods: []runtime.Object{pod("api-c", corev1.PodRunning, true, api), pod("api-b", corev1.PodRunning, true, api)}, want: "api-b"},
		{name: "running but not ready", pods: []runtime.Object{pod("api-a", corev1.PodRunning, false, api)}, want: "api-a"},
		{name: "other component", pods: []runtime.Object{pod("web-a", corev1.PodRunning, true, map[string]string{"component": "web"})}, wantErr: "no running pod component=metrics-api in namespace viz"},
		{name: "pending and terminating", pods: []runtime.Object{pod("api-p", corev1.PodPending, false, api), terminating}, wantErr: "no running pod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pick(context.Background(), fake.NewClientset(tt.pods...), "viz", "component=metrics-api")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("pick = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("pick = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
