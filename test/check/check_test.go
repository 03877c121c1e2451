// Package check runs `linkerd check` and `linkerd version` against a real
// kube-apiserver (test/cluster), through the CLI's own kubeconfig handling.
package check

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/cli/cmd"
	"github.com/linkerd-go/linkerd/cli/healthcheck"
	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/version"
	"github.com/linkerd-go/linkerd/test/cluster"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// linkerd runs the CLI against the test cluster.
func linkerd(t *testing.T, c *cluster.Cluster, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--kubeconfig", c.Kubeconfig)
	code = cmd.Execute(context.Background(), args, cmd.Env{Stdout: &out, Stderr: &errOut, ServerVersion: cmd.ClusterServerVersion})
	return code, out.String(), errOut.String()
}

func TestCheckPre(t *testing.T) {
	c := cluster.Start(t)
	code, out, errOut := linkerd(t, c, "check", "--pre", "-L", "l5d-check-pre")
	if code != 0 {
		t.Fatalf("check --pre exited %d on a fresh cluster:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"kubernetes-api\n--------------\n√ can initialize the client\n√ can query the Kubernetes API\n",
		"√ is running the minimum Kubernetes API version\n",
		"pre-kubernetes-setup\n--------------------\n√ control plane namespace does not already exist\n√ can create non-namespaced resources\n",
		"√ no clock skew detected\n",
		"\nStatus check results are √\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckNotInstalled(t *testing.T) {
	c := cluster.Start(t)
	code, out, _ := linkerd(t, c, "check", "-L", "l5d-absent", "-o", "json", "--wait", "1s")
	if code != 1 {
		t.Errorf("check exited %d without a control plane, want 1", code)
	}
	var res healthcheck.JSONResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, out)
	}
	last := res.Categories[len(res.Categories)-1]
	failed := last.Checks[len(last.Checks)-1]
	if res.Success || last.Name != healthcheck.LinkerdExistence || failed.Description != "'linkerd-config' config map exists" || failed.Result != healthcheck.StatusError || failed.Hint == "" {
		t.Errorf("want the run to stop at the linkerd-config check with an error and a hint, got:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	c := cluster.Start(t)
	code, out, errOut := linkerd(t, c, "version", "-L", "l5d-version")
	if code != 0 || !strings.HasSuffix(out, "\nServer version: unavailable\n") {
		t.Fatalf("before install: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	ctx := context.Background()
	ns := c.Namespace(t)
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: k8s.ConfigMapName},
		Data:       map[string]string{k8s.ConfigValuesKey: "linkerdVersion: stable-9.9.9\nclusterDomain: cluster.local\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = linkerd(t, c, "version", "-L", ns)
	if code != 0 || !strings.HasSuffix(out, "\nServer version: stable-9.9.9\n") {
		t.Errorf("installed: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestInstallThenCheck installs the control plane with `linkerd install`
// (CRDs first), stands in for the kubelet by creating each deployment's pod
// and marking it running and ready, then expects `linkerd check` to pass;
// then meshes a pod with `linkerd inject --manual` and runs
// `linkerd check --proxy` on its namespace.
func TestInstallThenCheck(t *testing.T) {
	c := cluster.Start(t)
	cluster.RequireKubectl(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "linkerd"

	code, crds, errOut := linkerd(t, c, "install", "--crds")
	if code != 0 {
		t.Fatalf("install --crds: exit %d: %s", code, errOut)
	}
	c.Apply(t, crds)
	testkit.Eventually(t, time.Minute, func() error {
		_, err := c.Client.Discovery().ServerResourcesForGroupVersion("policy.linkerd.io/v1beta3")
		if err != nil {
			return fmt.Errorf("the CRDs to be served: %w", err)
		}
		return nil
	})
	code, manifest, errOut := linkerd(t, c, "install", "-L", ns)
	if code != 0 {
		t.Fatalf("install: exit %d: %s", code, errOut)
	}
	c.Apply(t, manifest)

	deps, err := c.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) == 0 {
		t.Fatal("linkerd install created no deployments")
	}
	for _, d := range deps.Items {
		runPod(t, ctx, c, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: d.Name + "-6b7c9d-" + "x1y2z", Namespace: ns,
				Labels: d.Spec.Template.Labels, Annotations: d.Spec.Template.Annotations,
			},
			Spec: d.Spec.Template.Spec,
		})
	}

	code, out, errOut := linkerd(t, c, "check", "-L", ns, "--wait", "10s")
	if code != 0 {
		t.Fatalf("check after install: exit %d\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.HasSuffix(out, "Status check results are √\n") || strings.Contains(out, "‼") {
		t.Errorf("check after install is not clean:\n%s", out)
	}
	t.Logf("linkerd check:\n%s", out)

	code, out, _ = linkerd(t, c, "version", "-L", ns)
	if code != 0 || !strings.Contains(out, "Server version: "+version.Version+"\n") {
		t.Errorf("version after install: exit %d, %q", code, out)
	}

	// A meshed pod, in a namespace the injector webhook leaves alone (the
	// API server could not reach it: there is no kubelet or network here).
	const app = "check-app"
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: app, Labels: map[string]string{"config.linkerd.io/admission-webhooks": "disabled"},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().ServiceAccounts(app).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	podYAML := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(podYAML, []byte(`apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: `+app+`
  labels: {app: web}
spec:
  containers:
    - name: web
      image: registry.test/web:v1
      ports: [{name: http, containerPort: 8080}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, injected, errOut := linkerd(t, c, "inject", "--manual", "-L", ns, podYAML)
	if code != 0 {
		t.Fatalf("inject --manual: exit %d: %s", code, errOut)
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal([]byte(injected), &pod); err != nil {
		t.Fatalf("inject output is not a pod: %v\n%s", err, injected)
	}
	runPod(t, ctx, c, &pod)

	code, out, errOut = linkerd(t, c, "check", "--proxy", "-n", app, "-L", ns, "--wait", "10s")
	if code != 0 || strings.Contains(out, "‼") {
		t.Fatalf("check --proxy: exit %d\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("linkerd check --proxy:\n%s", out)
	for _, want := range []string{"√ data plane proxies are ready\n", "√ data plane proxies certificate match CA\n", "√ data plane and cli versions match\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("check --proxy output lacks %q:\n%s", want, out)
		}
	}

	// Policy resources that cannot apply, created past the policy-validator
	// (the namespace opts out of the webhooks): warnings naming each, and
	// the check still passes.
	c.Apply(t, `apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: nothing, namespace: `+app+`}
spec: {podSelector: {matchLabels: {app: gone}}, port: 8080}
---
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {name: web-grpc, namespace: `+app+`}
spec: {podSelector: {matchLabels: {app: web}}, port: grpc}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: wildcards, namespace: `+app+`}
spec: {identities: ["*.*.foo"]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: orphan, namespace: `+app+`}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: wildcards}]
`)
	code, out, errOut = linkerd(t, c, "check", "--proxy", "-n", app, "-L", ns, "--wait", "10s")
	if code != 0 {
		t.Fatalf("check --proxy with bad policy: exit %d, want 0 (warnings only)\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("linkerd check --proxy with bad policy:\n%s", out)
	for _, want := range []string{
		"‼ policy resources are valid\n    MeshTLSAuthentication " + app + `/wildcards: invalid MeshTLSAuthentication: spec.identities[0]: "*.*.foo" cannot match`,
		"‼ servers select pods and their ports\n    Server " + app + "/nothing: spec.podSelector matches no pod\n    Server " + app + `/web-grpc: spec.port "grpc" is not the name of a container port of any selected pod`,
		"‼ authorizations target existing resources\n    AuthorizationPolicy " + app + `/orphan: spec.targetRef: Server "web-http" does not exist`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check --proxy output lacks %q:\n%s", want, out)
		}
	}
}

// runPod creates pod and sets the status a kubelet would report once every
// container runs and is ready.
func runPod(t *testing.T, ctx context.Context, c *cluster.Cluster, pod *corev1.Pod) {
	t.Helper()
	created, err := c.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	now := metav1.Now()
	st := corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		},
	}
	for _, ct := range created.Spec.InitContainers {
		s := corev1.ContainerStatus{Name: ct.Name, Image: ct.Image}
		if ct.RestartPolicy != nil && *ct.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			s.Ready, s.State.Running = true, &corev1.ContainerStateRunning{StartedAt: now}
		} else {
			s.State.Terminated = &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, s)
	}
	for _, ct := range created.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: ct.Name, Image: ct.Image, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	created.Status = st
	if _, err := c.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting the status of pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
}
