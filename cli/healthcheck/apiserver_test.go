package healthcheck

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/test/cluster"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The tests in this file run the checks against a real kube-apiserver
// (test/cluster): no kubelet, no nodes unless a test creates them.

func TestMain(m *testing.M) { cluster.Main(m) }

// render runs cats on s and returns the success and the table output, for
// failure messages.
func render(t *testing.T, cats []Category, s *State) (bool, map[string]Result, string) {
	t.Helper()
	var buf bytes.Buffer
	table, err := NewRenderer(TableOutput, &buf)
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]Result{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	success := Run(ctx, cats, s, fastOptions, func(r Result) {
		table.Observe(r)
		if !r.Retrying {
			results[r.Description] = r
		}
	})
	if err := table.Finish(success); err != nil {
		t.Fatal(err)
	}
	return success, results, buf.String()
}

func TestAPIServerPreInstall(t *testing.T) {
	c := cluster.Start(t)
	s := &State{
		ControlPlaneNamespace: "l5d-pre-install",
		CLIVersion:            testVersion,
		NewClient:             func() (kubernetes.Interface, error) { return kubernetes.NewForConfig(c.RESTConfig) },
		ServerTime:            func(ctx context.Context) (time.Time, error) { return APIServerTime(ctx, c.RESTConfig) },
		KubectlVersion:        LocalKubectlVersion,
	}
	success, results, out := render(t, PreInstallCategories(), s)
	if !success {
		t.Fatalf("check --pre failed against a fresh API server:\n%s", out)
	}
	for _, cat := range PreInstallCategories() {
		for _, chk := range cat.Checks {
			r, ok := results[chk.Description]
			if !ok {
				t.Errorf("check %q not reported", chk.Description)
				continue
			}
			// kubectl may be missing or old on this machine: a warning.
			if r.Status != StatusSuccess && chk.Description != "is running the minimum kubectl version" {
				t.Errorf("check %q: %s: %v", chk.Description, r.Status, r.Err)
			}
		}
	}
	t.Logf("output:\n%s", out)
}

// TestAPIServerPreInstallWithoutRights runs --pre as a user without any
// RBAC grant: the checks that need rights fail, naming what is missing.
func TestAPIServerPreInstallWithoutRights(t *testing.T) {
	c := cluster.Start(t)
	cfg := rest.CopyConfig(c.RESTConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "alice"}
	s := &State{
		ControlPlaneNamespace: "l5d-pre-install",
		CLIVersion:            testVersion,
		NewClient:             func() (kubernetes.Interface, error) { return kubernetes.NewForConfig(cfg) },
		ServerTime:            func(ctx context.Context) (time.Time, error) { return APIServerTime(ctx, cfg) },
	}
	success, results, out := render(t, PreInstallCategories(), s)
	if success {
		t.Fatalf("check --pre passed for a user without rights:\n%s", out)
	}
	wants := map[string]want{
		"can initialize the client":                             {StatusSuccess, ""},
		"can query the Kubernetes API":                          {StatusSuccess, ""},
		"can create non-namespaced resources":                   {StatusError, "missing permission to create namespaces"},
		"can create ServiceAccounts":                            {StatusError, "missing permission to create serviceaccounts in namespace l5d-pre-install"},
		"can create Deployments":                                {StatusError, "missing permission to create deployments.apps"},
		"can read Secrets":                                      {StatusError, "missing permission to get secrets"},
		"can read extension-apiserver-authentication configmap": {StatusWarning, "kube-system"},
		"no clock skew detected":                                {StatusSuccess, ""},
	}
	assertResults(t, results, wants)
	if !strings.Contains(out, "× can create non-namespaced resources\n    missing permission to create namespaces") {
		t.Errorf("the output does not name the failing check and its cause:\n%s", out)
	}
	t.Logf("output:\n%s", out)
}

// TestAPIServerControlPlane writes the fixture's control plane and meshed
// pod through the API (statuses set as a kubelet would), then runs every
// control-plane and data-plane check.
func TestAPIServerControlPlane(t *testing.T) {
	c := cluster.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	w := healthyWorld(t)
	apply(t, ctx, c, w.objs)
	createCRDs(t, ctx, c)

	state := func() *State {
		return &State{ControlPlaneNamespace: testNS, DataPlaneNamespace: appNS, CLIVersion: testVersion, Kube: c.Client, Now: func() time.Time { return testNow }}
	}
	success, results, out := render(t, DataPlaneCategories(), state())
	if !success {
		t.Fatalf("checks failed:\n%s", out)
	}
	for _, cat := range DataPlaneCategories() {
		if cat.ID == LinkerdPolicy {
			// No dynamic client: skipped. They need the chart's CRDs,
			// not this test's stand-ins (test/check runs them).
			continue
		}
		for _, chk := range cat.Checks {
			if chk.Description == "is running the minimum kubectl version" {
				continue // no KubectlVersion: skipped
			}
			if r, ok := results[chk.Description]; !ok || r.Status != StatusSuccess {
				t.Errorf("check %q: %+v (reported: %v)", chk.Description, r, ok)
			}
		}
	}

	if v, err := ServerVersion(ctx, c.Client, testNS); err != nil || v != testVersion {
		t.Errorf("ServerVersion = %q, %v; want %q", v, err, testVersion)
	}
	if v, err := ServerVersion(ctx, c.Client, "not-installed"); err == nil {
		t.Errorf("ServerVersion of a namespace without Linkerd = %q, want an error", v)
	}

	// The identity pod's proxy stops being ready.
	pod, err := c.Client.CoreV1().Pods(testNS).Get(ctx, "linkerd-identity-5d8f7c-abcde", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Conditions[0].Status = corev1.ConditionFalse
	pod.Status.ContainerStatuses[0].Ready = false
	if _, err := c.Client.CoreV1().Pods(testNS).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	success, results, out = render(t, ControlPlaneCategories(), state())
	if success {
		t.Fatalf("checks passed with the identity pod not ready:\n%s", out)
	}
	assertResults(t, results, map[string]want{
		"control plane pods are ready":      {StatusError, `no ready pods for "linkerd-identity"`},
		"certificate config is valid":       {}, // stopped: the failure is fatal
		"control plane proxies are healthy": {},
	})
}

// apply creates objs in the cluster, namespaces first, and sets the
// statuses of pods and nodes.
func apply(t *testing.T, ctx context.Context, c *cluster.Cluster, objs []runtime.Object) {
	t.Helper()
	kube := c.Client
	create := func(o runtime.Object) error {
		var err error
		switch o := o.(type) {
		case *corev1.Namespace:
			if _, err = kube.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{}); err == nil {
				// Pods need their namespace's default ServiceAccount.
				_, err = kube.CoreV1().ServiceAccounts(o.Name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
			}
		case *corev1.Node:
			var n *corev1.Node
			if n, err = kube.CoreV1().Nodes().Create(ctx, o, metav1.CreateOptions{}); err == nil {
				n.Status = o.Status
				_, err = kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
			}
		case *corev1.Pod:
			var p *corev1.Pod
			if p, err = kube.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{}); err == nil {
				p.Status = o.Status
				_, err = kube.CoreV1().Pods(o.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			}
		case *corev1.ConfigMap:
			_, err = kube.CoreV1().ConfigMaps(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Secret:
			_, err = kube.CoreV1().Secrets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.ServiceAccount:
			_, err = kube.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			_, err = kube.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.Deployment:
			_, err = kube.AppsV1().Deployments(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = kube.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			o.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: o.Name}
			_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
		case *admissionv1.MutatingWebhookConfiguration:
			_, err = kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, o, metav1.CreateOptions{})
		case *admissionv1.ValidatingWebhookConfiguration:
			_, err = kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, o, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("apply: unsupported %T", o)
		}
		return err
	}
	var others []runtime.Object
	for _, o := range objs {
		if ns, ok := o.(*corev1.Namespace); ok {
			if ns.Name == "default" {
				continue
			}
			if err := create(o); err != nil {
				t.Fatalf("creating namespace %s: %v", ns.Name, err)
			}
			continue
		}
		others = append(others, o)
	}
	for _, o := range others {
		if err := create(o.DeepCopyObject()); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.(metav1.Object).GetName(), err)
		}
	}
}

// createCRDs creates minimal CustomResourceDefinitions for the resources
// the checks expect, and waits until the API server serves them.
func createCRDs(t *testing.T, ctx context.Context, c *cluster.Cluster) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for i, crd := range expectedCRDs {
		kind := fmt.Sprintf("CheckTestKind%d", i)
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1",
			"kind":       "CustomResourceDefinition",
			"metadata":   map[string]any{"name": crd.String()},
			"spec": map[string]any{
				"group": crd.Group,
				"scope": "Namespaced",
				"names": map[string]any{"plural": crd.Resource, "singular": strings.ToLower(kind), "kind": kind, "listKind": kind + "List"},
				"versions": []any{map[string]any{
					"name": "v1alpha1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
				}},
			},
		}}
		if _, err := dyn.Resource(gvr).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating CRD %s: %v", crd, err)
		}
	}
	s := &State{Kube: c.Client}
	for {
		err := checkCRDs(ctx, s)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("CRDs not served: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
