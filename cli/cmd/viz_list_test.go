package cmd

import (
	"bytes"
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/linkerd-go/linkerd/internal/golden"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// TestVizListKube lists the meshed pods of a fake cluster: tap is enabled
// where the proxy has the tap service's identity; unmeshed pods are left
// out; a missing namespace is an error.
func TestVizListKube(t *testing.T) {
	pod := func(ns, name string, meshed, tap bool) runtime.Object {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
		if meshed {
			p.Labels[k8s.ControllerNSLabel] = "linkerd"
			c := corev1.Container{Name: k8s.ProxyContainerName}
			if tap {
				c.Env = []corev1.EnvVar{{Name: proxyenv.TapSvcName, Value: "tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"}}
			}
			p.Spec.Containers = append(p.Spec.Containers, c)
		}
		return p
	}
	nsObj := func(name string) runtime.Object { return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	kube := fake.NewClientset(nsObj("demo"), nsObj("other"), nsObj("empty"),
		pod("demo", "web-1", true, true), pod("demo", "voting-1", true, false), pod("demo", "plain", false, false),
		pod("demo", "bot-1", true, true), pod("other", "x-1", true, false))
	for _, tc := range []struct {
		name, ns, err string
	}{
		{name: "viz_list", ns: "demo"},
		{name: "viz_list_all"},
		{ns: "empty", err: "no meshed pods in namespace empty"},
		{ns: "nothere", err: "namespace nothere does not exist"},
	} {
		pods, err := kubeTapPods(context.Background(), kube, tc.ns)
		var b bytes.Buffer
		if err == nil {
			err = printTapPods(&b, pods, tc.ns)
		}
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %s", tc.ns, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, tc.name, b.String())
	}
}

// TestVizListNoMesh: without a kubeconfig or a local mesh, one line.
func TestVizListNoMesh(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	state := t.TempDir()
	code, stdout, stderr := runCLI(t, "viz", "list", "--state-dir", state)
	if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "no local mesh up at "+state) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
