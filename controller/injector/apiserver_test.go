package injector_test

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd/pkg/inject"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// TestAPIServer registers the in-process injector with a real kube-apiserver
// and creates pods through it: the API server calls the webhook, applies
// the patch and validates the result.
func TestAPIServer(t *testing.T) {
	c := cluster.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ctlNS := c.Namespace(t)
	values := "controllerNamespace: " + ctlNS + "\nlinkerdVersion: stable-9.9.9\nidentityTrustAnchorsPEM: " + mustJSONString(t, trustAnchors(t)) + "\n"
	if _, err := c.Client.CoreV1().ConfigMaps(ctlNS).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: k8s.ConfigMapName},
		Data:       map[string]string{k8s.ConfigValuesKey: values},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	inj := startInjector(t, c.Client, ctlNS, nil)

	// The application namespace asks for injection; only namespaces with
	// this test's label go through the webhook.
	appNS := c.Namespace(t)
	selector := map[string]string{"injector-test": ctlNS}
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, appNS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels = selector
	ns.Annotations = map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectEnabled}
	if _, err := c.Client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	registerWebhook(ctx, t, c.Client, "linkerd-proxy-injector-"+ctlNS, inj, selector)
	waitForWebhook(ctx, t, c.Client, appNS)

	t.Run("injected", func(t *testing.T) {
		pod := appPod("web")
		pod.Annotations = map[string]string{inject.ProxyWaitBeforeExitSecondsAnnotation: "5"}
		got, err := c.Client.CoreV1().Pods(appNS).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		proxy := findContainer(got.Spec.Containers, k8s.ProxyContainerName)
		if proxy == nil || got.Spec.Containers[0].Name != k8s.ProxyContainerName {
			t.Fatalf("containers = %v, want linkerd-proxy first", containerNames(got.Spec.Containers))
		}
		if findContainer(got.Spec.InitContainers, k8s.InitContainerName) == nil {
			t.Errorf("init containers = %v, want linkerd-init", containerNames(got.Spec.InitContainers))
		}
		if proxy.Lifecycle == nil || proxy.Lifecycle.PreStop == nil || proxy.Lifecycle.PreStop.Sleep == nil || proxy.Lifecycle.PreStop.Sleep.Seconds != 5 {
			t.Errorf("preStop = %+v, want a 5s sleep", proxy.Lifecycle)
		}
		if got.Labels[k8s.ControllerNSLabel] != ctlNS || got.Labels[k8s.WorkloadNamespaceLabel] != appNS {
			t.Errorf("labels = %v", got.Labels)
		}
		if got.Annotations[k8s.ProxyVersionAnnotation] != "stable-9.9.9" || got.Annotations[k8s.CreatedByAnnotation] == "" {
			t.Errorf("annotations = %v", got.Annotations)
		}
		ports := map[string]int32{}
		for _, p := range proxy.Ports {
			ports[p.Name] = p.ContainerPort
		}
		if ports["linkerd-proxy"] != 4143 || ports["linkerd-admin"] != 4191 {
			t.Errorf("proxy ports = %v", ports)
		}
	})

	t.Run("native sidecar", func(t *testing.T) {
		pod := appPod("native")
		pod.Annotations = map[string]string{inject.ProxyEnableNativeSidecarAnnotation: "true"}
		got, err := c.Client.CoreV1().Pods(appNS).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n := containerNames(got.Spec.InitContainers); strings.Join(n, ",") != k8s.InitContainerName+","+k8s.ProxyContainerName {
			t.Errorf("init containers = %v", n)
		}
		if findContainer(got.Spec.Containers, k8s.ProxyContainerName) != nil {
			t.Error("native sidecar proxy also among the containers")
		}
	})

	t.Run("host network is left alone", func(t *testing.T) {
		pod := appPod("hostnet")
		pod.Spec.HostNetwork = true
		got, err := c.Client.CoreV1().Pods(appNS).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Spec.InitContainers) != 0 || len(got.Spec.Containers) != 1 || got.Labels[k8s.ControllerNSLabel] != "" {
			t.Errorf("host-network pod was changed: init %v, containers %v, labels %v",
				containerNames(got.Spec.InitContainers), containerNames(got.Spec.Containers), got.Labels)
		}
		// A bare pod's events are about its namespace, a cluster-scoped
		// object, so they live in "default".
		ev := waitClusterEvent(ctx, t, c.Client, metav1.NamespaceDefault, appNS, "InjectionSkipped")
		if ev.InvolvedObject.Kind != "Namespace" || !strings.Contains(ev.Message, "hostNetwork") {
			t.Errorf("event = %s on %s/%s, want the hostNetwork skip on the namespace", ev.Message, ev.InvolvedObject.Kind, ev.InvolvedObject.Name)
		}
	})

	t.Run("opted out pod", func(t *testing.T) {
		pod := appPod("optout")
		pod.Annotations = map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectDisabled}
		got, err := c.Client.CoreV1().Pods(appNS).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if findContainer(got.Spec.Containers, k8s.ProxyContainerName) != nil {
			t.Error("pod annotated disabled was injected")
		}
	})
}

func appPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "example/app:v1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
}

func registerWebhook(ctx context.Context, t *testing.T, client kubernetes.Interface, name string, inj *runningInjector, nsLabels map[string]string) {
	t.Helper()
	url := inj.URL + "/"
	fail := admissionregistrationv1.Fail // a broken injector must fail this test
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(10)
	scope := admissionregistrationv1.NamespacedScope
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "linkerd-proxy-injector.linkerd.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: inj.CAPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
					Resources: []string{"pods"}, Scope: &scope},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: nsLabels},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          &timeout,
		}},
	}
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting webhook configuration: %v", err)
		}
	})
}

// waitForWebhook dry-runs pod creations until the API server has picked up
// the webhook configuration and the pod comes back injected.
func waitForWebhook(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := client.CoreV1().Pods(ns).Create(ctx, appPod("probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && findContainer(got.Spec.Containers, k8s.ProxyContainerName) != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server does not call the injector (last error: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitClusterEvent waits for an event in ns about the object named about.
func waitClusterEvent(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, about, reason string) corev1.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range list.Items {
			if ev.Reason == reason && ev.InvolvedObject.Name == about {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event about %s in %s", reason, about, ns)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func findContainer(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

func containerNames(cs []corev1.Container) []string {
	var n []string
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return n
}
