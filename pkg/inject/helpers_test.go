package inject

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// testValues are the chart defaults with the test trust anchors.
func testValues(t *testing.T) Values {
	t.Helper()
	v, err := DefaultValues()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile("testdata/trust-anchors.pem")
	if err != nil {
		t.Fatal(err)
	}
	v["identityTrustAnchorsPEM"] = string(pem)
	v["linkerdVersion"] = "test-1.2.3"
	return v
}

func testInjector(t *testing.T, edit func(Values)) *Injector {
	t.Helper()
	v := testValues(t)
	if edit != nil {
		edit(v)
	}
	inj, err := New(v, "linkerd/test test-1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	return inj
}

// testPod is a pod with one app container listening on 8080 ("http").
func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "emojivoto", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: "example/web:v1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "grpc", ContainerPort: 9090}},
			}},
		},
	}
}

func workloadOf(pod *corev1.Pod) *Workload {
	return &Workload{Kind: "deployment", Name: "web", Namespace: pod.Namespace, Meta: &pod.ObjectMeta, Spec: &pod.Spec}
}

// applyToPod applies p to pod and decodes the result strictly, so that a
// field the templates misspell fails the test.
func applyToPod(t *testing.T, pod *corev1.Pod, p Patch) *corev1.Pod {
	t.Helper()
	data, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	// The patch travels as JSON, as in an AdmissionReview.
	wire, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var decoded Patch
	if err := json.Unmarshal(wire, &decoded); err != nil {
		t.Fatal(err)
	}
	doc, err = decoded.Apply(doc)
	if err != nil {
		t.Fatalf("applying the patch: %v", err)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	got := &corev1.Pod{}
	if err := yaml.UnmarshalStrict(out, got); err != nil {
		t.Fatalf("patched pod does not decode strictly: %v", err)
	}
	return got
}

func mustInject(t *testing.T, inj *Injector, pod *corev1.Pod, ns map[string]string) (*corev1.Pod, *Result) {
	t.Helper()
	res, err := inj.Inject(workloadOf(pod), ns, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skip != nil {
		t.Fatalf("skipped: %s", res.Skip.Message)
	}
	return applyToPod(t, pod, res.Patch), res
}

func container(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// argValue returns the value following flag in args ("" if absent).
func argValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func toGeneric(t *testing.T, x any) map[string]any {
	t.Helper()
	data, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(t *testing.T, x any) string {
	t.Helper()
	data, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func applyToPodNoStrict(t *testing.T, inj *Injector, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	got, _ := mustInject(t, inj, pod, nil)
	return got
}
