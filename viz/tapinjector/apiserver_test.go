package tapinjector_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd/controller/injector"
	"github.com/linkerd-go/linkerd/controller/webhook"
	"github.com/linkerd-go/linkerd/controller/webhook/webhooktest"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
	"github.com/linkerd-go/linkerd/test/cluster"
	"github.com/linkerd-go/linkerd/viz/tap"
	"github.com/linkerd-go/linkerd/viz/tapinjector"
)

func TestMain(m *testing.M) { cluster.Main(m) }

const tapID = "tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"

// TestAPIServer registers the proxy-injector and the tap-injector with a
// real kube-apiserver, named as the charts name them (the proxy-injector's
// configuration sorts first), and creates pods through it: a pod the
// proxy-injector meshes comes out with tap enabled; a namespace annotated
// viz.linkerd.io/disable-tap keeps its pods without.
func TestAPIServer(t *testing.T) {
	c := cluster.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)

	ctlNS := c.Namespace(t)
	anchors, err := os.ReadFile("../../pkg/inject/testdata/trust-anchors.pem")
	if err != nil {
		t.Fatal(err)
	}
	quoted, err := json.Marshal(string(anchors))
	if err != nil {
		t.Fatal(err)
	}
	values := "controllerNamespace: " + ctlNS + "\nlinkerdVersion: stable-9.9.9\nidentityTrustAnchorsPEM: " + string(quoted) + "\n"
	if _, err := c.Client.CoreV1().ConfigMaps(ctlNS).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: k8s.ConfigMapName},
		Data:       map[string]string{k8s.ConfigValuesKey: values},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	inj, err := injector.New(injector.Config{Client: c.Client, ControllerNamespace: ctlNS, CreatedBy: "linkerd/proxy-injector test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	tapInj := &tapinjector.Server{TapIdentity: tapID, Client: c.Client, Log: log}

	selector := map[string]string{"tap-injector-test": ctlNS}
	appNS := labelledNamespace(ctx, t, c, selector, nil)
	quietNS := labelledNamespace(ctx, t, c, selector, map[string]string{tap.DisableTapAnnotation: "true"})

	register(ctx, t, c.Client, "linkerd-proxy-injector-"+ctlNS, "linkerd-proxy-injector.linkerd.io", selector, inj)
	register(ctx, t, c.Client, "linkerd-tap-injector-"+ctlNS, "tap-injector.linkerd.io", selector, tapInj)

	// Until the API server calls both webhooks, dry runs come back without
	// the proxy or without tap.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := c.Client.CoreV1().Pods(appNS).Create(ctx, appPod("probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && tap.TapEnabled(got) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server does not call both injectors (last error: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	got, err := c.Client.CoreV1().Pods(appNS).Create(ctx, appPod("web"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if k8s.ProxyContainer(got) == nil || !tap.TapEnabled(got) || got.Annotations[tap.TapEnabledAnnotation] != "true" {
		t.Errorf("pod %s: annotations %v, proxy %+v: want meshed with tap enabled", got.Name, got.Annotations, k8s.ProxyContainer(got))
	}
	for _, e := range k8s.ProxyContainer(got).Env {
		if e.Name == proxyenv.TapSvcName && e.Value != tapID {
			t.Errorf("%s=%s, want %s", e.Name, e.Value, tapID)
		}
	}

	quiet, err := c.Client.CoreV1().Pods(quietNS).Create(ctx, appPod("web"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if k8s.ProxyContainer(quiet) == nil || tap.TapEnabled(quiet) || quiet.Annotations[tap.TapEnabledAnnotation] != "" {
		t.Errorf("pod of a namespace disabling tap: annotations %v, proxy %+v: want meshed without tap", quiet.Annotations, k8s.ProxyContainer(quiet))
	}
}

// labelledNamespace makes a namespace asking for injection, with the
// webhooks' selector labels and annotations.
func labelledNamespace(ctx context.Context, t *testing.T, c *cluster.Cluster, labels, annotations map[string]string) string {
	t.Helper()
	name := c.Namespace(t)
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels = labels
	ns.Annotations = map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectEnabled}
	for k, v := range annotations {
		ns.Annotations[k] = v
	}
	if _, err := c.Client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

type server interface {
	Serve(ctx context.Context, lis net.Listener, tlsConfig *tls.Config) error
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

// register serves the webhook srv over HTTPS on the loopback and registers
// it with the API server as the MutatingWebhookConfiguration name, failing
// closed, re-invoked when a later webhook changes the pod.
func register(ctx context.Context, t *testing.T, client kubernetes.Interface, name, webhookName string, selector map[string]string, srv server) {
	t.Helper()
	cert := webhooktest.WriteServingCert(t, t.TempDir(), name+".svc")
	certs, err := webhook.NewCertLoader(cert.CertFile, cert.KeyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := webhooktest.Serve(t, func(ctx context.Context, lis net.Listener) error {
		return srv.Serve(ctx, lis, certs.TLSConfig())
	})
	url := "https://" + addr + "/"
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	again := admissionregistrationv1.IfNeededReinvocationPolicy
	timeout := int32(10)
	scope := admissionregistrationv1.NamespacedScope
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         webhookName,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: cert.CAPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
					Resources: []string{"pods"}, Scope: &scope},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: selector},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			ReinvocationPolicy:      &again,
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
