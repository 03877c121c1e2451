package cmd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	restclient "k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/linkerd-go/linkerd/internal/golden"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/version"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/grafana"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
	"github.com/linkerd-go/linkerd/viz/vizcheck"
)

// TestVizInstallGolden compares `linkerd viz install` outputs with
// testdata/viz_install_*.golden. Regenerate with: go test ./cli/cmd -run
// TestVizInstallGolden -update
func TestVizInstallGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"viz_install_default", []string{"viz", "install", "--ignore-cluster", "-f", "testdata/viz_tap_injector_values.yaml"}},
		// The dashboards' JSON (viz/grafana's) once is enough.
		{"viz_install_ha", []string{"viz", "install", "--ignore-cluster", "-f", "testdata/viz_tap_injector_values.yaml", "--ha", "--set", "grafana.dashboards=false"}},
		{"viz_install_prometheus_url", []string{"viz", "install", "--ignore-cluster", "-f", "testdata/viz_tap_injector_values.yaml", "--set", "prometheusUrl=http://prometheus.monitoring.svc.cluster.local:9090", "--set", "grafana.url=http://grafana.monitoring.svc.cluster.local:3000", "--set", "grafana.dashboards=false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, got, stderr := runCLI(t, tt.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit code %d, stderr: %s", code, stderr)
			}
			golden.Check(t, tt.name, got)
		})
	}
}

// vizObjects renders `linkerd viz install` with args and decodes every
// object strictly, by kind/name.
func vizObjects(t *testing.T, args ...string) map[string]runtime.Object {
	t.Helper()
	code, out, stderr := runCLI(t, append([]string{"viz", "install", "--ignore-cluster"}, args...)...)
	if code != 0 {
		t.Fatalf("exit code %d, stderr: %s", code, stderr)
	}
	found := map[string]runtime.Object{}
	for _, o := range decodeAll(t, out) {
		m := o.(metav1.ObjectMetaAccessor).GetObjectMeta()
		kind := o.GetObjectKind().GroupVersionKind().Kind
		switch kind {
		case "Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration":
			if m.GetNamespace() != "" {
				t.Errorf("%s %s is namespaced", kind, m.GetName())
			}
		case "Role", "RoleBinding": // the tap service's read of the trust anchors
			if m.GetNamespace() != "linkerd" {
				t.Errorf("%s %s is in namespace %q, want the control plane's", kind, m.GetName(), m.GetNamespace())
			}
		default:
			if m.GetNamespace() != vizcheck.DefaultNamespace {
				t.Errorf("%s %s is in namespace %q, want %s", kind, m.GetName(), m.GetNamespace(), vizcheck.DefaultNamespace)
			}
		}
		if m.GetLabels()[vizcheck.ExtensionLabel] != vizcheck.ExtensionName {
			t.Errorf("%s %s lacks the %s=%s label", kind, m.GetName(), vizcheck.ExtensionLabel, vizcheck.ExtensionName)
		}
		found[kind+"/"+m.GetName()] = o
	}
	return found
}

func containerArgs(t *testing.T, objs map[string]runtime.Object, deploy string) []string {
	t.Helper()
	d, ok := objs["Deployment/"+deploy].(*appsv1.Deployment)
	if !ok {
		t.Fatalf("no Deployment %s", deploy)
	}
	return d.Spec.Template.Spec.Containers[0].Args
}

// TestVizInstallObjects checks what the rest of the extension relies on:
// the namespace's label and injection, the component pods' labels and
// annotations, Prometheus only when no prometheusUrl is given, and HA.
func TestVizInstallObjects(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		objs := vizObjects(t)
		ns := objs["Namespace/"+vizcheck.DefaultNamespace].(*corev1.Namespace)
		if ns.Annotations[k8s.ProxyInjectAnnotation] != "enabled" {
			t.Errorf("namespace annotations %v: want injection enabled", ns.Annotations)
		}
		for _, name := range []string{vizcheck.MetricsAPIName, vizcheck.WebName, vizcheck.PrometheusName} {
			d := objs["Deployment/"+name].(*appsv1.Deployment)
			pod := d.Spec.Template
			if pod.Labels[vizcheck.ComponentLabel] != name || pod.Labels[vizcheck.ExtensionLabel] != vizcheck.ExtensionName {
				t.Errorf("%s: pod labels %v", name, pod.Labels)
			}
			if pod.Annotations[k8s.ProxyInjectAnnotation] != "enabled" || !strings.Contains(pod.Annotations[k8s.ProxyIgnoreOutboundPortsAnnotation], "443") {
				t.Errorf("%s: pod annotations %v: want injection, the API server bypassing the proxy", name, pod.Annotations)
			}
			if *d.Spec.Replicas != 1 || pod.Spec.Affinity != nil {
				t.Errorf("%s: %d replicas, affinity %v", name, *d.Spec.Replicas, pod.Spec.Affinity)
			}
			for _, kind := range []string{"ServiceAccount", "Service"} {
				if objs[kind+"/"+name] == nil {
					t.Errorf("no %s %s", kind, name)
				}
			}
		}
		// The dashboard's live calls: web reaches the tap service by its Service.
		if args := containerArgs(t, objs, vizcheck.WebName); !slices.Contains(args, "-tap-addr=tap.linkerd-viz.svc.cluster.local:8088") {
			t.Errorf("web's args %v: want the tap Service's address", args)
		}
		if svc, _ := objs["Service/"+vizcheck.TapName].(*corev1.Service); svc == nil || svc.Spec.Ports[0].Port != 8088 {
			t.Errorf("tap Service: %v", svc)
		}
		for _, comp := range []string{vizcheck.MetricsAPIName, vizcheck.PrometheusName} {
			crb, _ := objs["ClusterRoleBinding/"+vizcheck.ClusterRoleName(vizcheck.DefaultNamespace, comp)].(*rbacv1.ClusterRoleBinding)
			if crb == nil || crb.Subjects[0].Name != comp || crb.Subjects[0].Namespace != vizcheck.DefaultNamespace {
				t.Errorf("ClusterRoleBinding of %s: %+v", comp, crb)
			}
		}
		// The tap service: meshed, with the tap identity certified from its
		// ServiceAccount's token; its tap and identity connections skip its
		// proxy. The tap-injector gives the proxies that identity.
		const tapID = "tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"
		tapPod := objs["Deployment/"+vizcheck.TapName].(*appsv1.Deployment).Spec.Template
		if tapPod.Spec.ServiceAccountName != "tap" || objs["ServiceAccount/tap"] == nil {
			t.Errorf("tap runs as ServiceAccount %q", tapPod.Spec.ServiceAccountName)
		}
		if skip := tapPod.Annotations[k8s.ProxyIgnoreOutboundPortsAnnotation]; !strings.Contains(skip, "4190") || !strings.Contains(skip, "8080") {
			t.Errorf("tap's outbound skip ports %q: want the tap port and the identity service's", skip)
		}
		if args := containerArgs(t, objs, vizcheck.TapName); !slices.Contains(args, "-identity-local-name="+tapID) || !slices.Contains(args, "-addr=:8088") {
			t.Errorf("tap args %v", args)
		}
		if v := tapPod.Spec.Volumes; len(v) != 1 || v[0].Projected == nil || v[0].Projected.Sources[0].ServiceAccountToken.Audience != "identity.l5d.io" {
			t.Errorf("tap volumes %+v: want the identity token", v)
		}
		if args := containerArgs(t, objs, vizcheck.TapInjectorName); !slices.Contains(args, "-tap-identity="+tapID) {
			t.Errorf("tap-injector args %v", args)
		}
		wh, _ := objs["MutatingWebhookConfiguration/linkerd-tap-injector-webhook-config"].(*admissionregistrationv1.MutatingWebhookConfiguration)
		if wh == nil || wh.Webhooks[0].ClientConfig.Service.Name != vizcheck.TapInjectorName || len(wh.Webhooks[0].ClientConfig.CABundle) == 0 ||
			*wh.Webhooks[0].ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
			t.Errorf("tap-injector webhook configuration %+v", wh)
		}
		prom := objs["Deployment/prometheus"].(*appsv1.Deployment).Spec.Template
		if !strings.Contains(prom.Annotations[k8s.ProxyIgnoreOutboundPortsAnnotation], "4191") {
			t.Errorf("prometheus' scrapes of linkerd-admin go through its proxy: annotations %v", prom.Annotations)
		}
		if c := prom.Spec.Containers[0]; c.Image != "cr.l5d.io/linkerd-go/prometheus:"+version.Version {
			t.Errorf("prometheus image %s", c.Image)
		}
		cm := objs["ConfigMap/"+vizcheck.PrometheusConfigName].(*corev1.ConfigMap)
		for _, want := range []string{"job_name: linkerd-proxy", "kubernetes_sd_configs", "linkerd-proxy;linkerd-admin;linkerd", "target_label: k8s_job"} {
			if !strings.Contains(cm.Data["prometheus.yml"], want) {
				t.Errorf("prometheus.yml lacks %q", want)
			}
		}
		if args := containerArgs(t, objs, vizcheck.MetricsAPIName); !slices.Contains(args, "-prometheus-url=http://prometheus.linkerd-viz.svc.cluster.local:9090") {
			t.Errorf("metrics-api args %v: want the in-cluster Prometheus", args)
		}
		// The Grafana dashboards, as viz/grafana has them.
		want, err := grafana.Files()
		if err != nil {
			t.Fatal(err)
		}
		dash, _ := objs["ConfigMap/grafana-dashboards"].(*corev1.ConfigMap)
		if dash == nil || len(dash.Data) != len(want) || dash.Labels["grafana_dashboard"] != "1" {
			t.Fatalf("grafana-dashboards ConfigMap: %v", dash)
		}
		for name, b := range want {
			if strings.TrimSpace(dash.Data[name]) != strings.TrimSpace(string(b)) {
				t.Errorf("dashboard %s differs from viz/grafana's", name)
			}
		}
	})
	t.Run("ha", func(t *testing.T) {
		objs := vizObjects(t, "--ha")
		for _, name := range []string{vizcheck.MetricsAPIName, vizcheck.WebName} {
			d := objs["Deployment/"+name].(*appsv1.Deployment)
			if *d.Spec.Replicas != 3 || d.Spec.Template.Spec.Affinity == nil || d.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().IsZero() {
				t.Errorf("%s: %d replicas, affinity %v, resources %v", name, *d.Spec.Replicas, d.Spec.Template.Spec.Affinity, d.Spec.Template.Spec.Containers[0].Resources)
			}
			if objs["PodDisruptionBudget/"+name] == nil {
				t.Errorf("no PodDisruptionBudget %s", name)
			}
		}
		if d := objs["Deployment/prometheus"].(*appsv1.Deployment); *d.Spec.Replicas != 1 {
			t.Errorf("prometheus: %d replicas, want 1", *d.Spec.Replicas)
		}
	})
	t.Run("external prometheus", func(t *testing.T) {
		objs := vizObjects(t, "--set", "prometheusUrl=http://prom.example:9090", "--set", "grafana.url=http://grafana.example")
		for k := range objs {
			if strings.Contains(k, "prometheus") {
				t.Errorf("%s rendered with prometheusUrl set", k)
			}
		}
		if args := containerArgs(t, objs, vizcheck.MetricsAPIName); !slices.Contains(args, "-prometheus-url=http://prom.example:9090") {
			t.Errorf("metrics-api args %v", args)
		}
		if args := containerArgs(t, objs, vizcheck.WebName); !slices.Contains(args, "-grafana-url=http://grafana.example") {
			t.Errorf("web args %v", args)
		}
	})
	t.Run("namespace and log level", func(t *testing.T) {
		code, out, stderr := runCLI(t, "viz", "install", "--ignore-cluster", "--viz-namespace", "monitoring", "-L", "mesh", "--set", "defaultLogLevel=debug", "-o", "json")
		if code != 0 {
			t.Fatalf("exit code %d: %s", code, stderr)
		}
		for _, want := range []string{`"name": "monitoring"`, `linkerd-proxy;linkerd-admin;mesh`, `"-log-level=debug"`, `"name": "linkerd-monitoring-metrics-api"`} {
			if !strings.Contains(out, want) {
				t.Errorf("JSON output lacks %s", want)
			}
		}
	})
}

// TestVizErrors covers bad input: one-line errors, exit 1, nothing on stdout.
func TestVizErrors(t *testing.T) {
	tests := []struct {
		name, want string
		args       []string
	}{
		{"bad output", "--output must be yaml or json", []string{"viz", "install", "--ignore-cluster", "-o", "xml"}},
		{"no prometheus", "prometheus.enabled is false and prometheusUrl is empty", []string{"viz", "install", "--ignore-cluster", "--set", "prometheus.enabled=false"}},
		{"control plane namespace", "cannot be installed in the control plane's namespace", []string{"viz", "install", "--ignore-cluster", "--viz-namespace", "linkerd"}},
		{"missing values file", "--values", []string{"viz", "install", "--ignore-cluster", "-f", "/nonexistent.yaml"}},
		{"no kubeconfig", "--ignore-cluster", []string{"viz", "install", "--kubeconfig", "/nonexistent/kubeconfig"}},
		{"unknown verb", `unknown command "frobnicate"`, []string{"viz", "frobnicate"}},
		{"check namespace without proxy", "use it with --proxy", []string{"viz", "check", "-n", "demo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line containing %q", code, stdout, stderr, tt.want)
			}
		})
	}
}

// vizCluster is a fake cluster with the control plane's namespace and the
// viz extension as `linkerd viz install` renders it, its pods ready and
// meshed, and a Prometheus answering queries (through the service proxy)
// with promBody.
func vizCluster(t *testing.T, promBody string) kubernetes.Interface {
	t.Helper()
	var objs []runtime.Object
	for k, o := range vizObjects(t) {
		if strings.HasPrefix(k, "Namespace/") {
			objs = append(objs, o)
			continue
		}
		objs = append(objs, o)
		d, ok := o.(*appsv1.Deployment)
		if !ok {
			continue
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-abc", Namespace: d.Namespace, Labels: d.Spec.Template.Labels,
				Annotations: map[string]string{k8s.ProxyVersionAnnotation: version.Version}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: k8s.ProxyContainerName}, {Name: d.Name}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: k8s.ProxyContainerName, Ready: true}, {Name: d.Name, Ready: true}}},
		}
		objs = append(objs, pod)
	}
	cs := fakeCluster(objs...).(*fake.Clientset)
	cs.PrependProxyReactor("*", func(a k8stesting.Action) (bool, restclient.ResponseWrapper, error) {
		p := a.(k8stesting.ProxyGetAction)
		switch {
		case p.GetResource().Resource == "services" && p.GetName() == vizcheck.PrometheusName && p.GetPath() == "/api/v1/query":
			return true, fakeResponse(promBody), nil
		case p.GetResource().Resource == "pods" && strings.HasPrefix(p.GetName(), vizcheck.MetricsAPIName) && p.GetPath() == "/ready":
			return true, fakeResponse("ready\n"), nil
		}
		return true, nil, errors.New("unexpected proxy request")
	})
	return cs
}

type fakeResponse string

func (r fakeResponse) DoRaw(context.Context) ([]byte, error) { return []byte(r), nil }
func (r fakeResponse) Stream(context.Context) (io.ReadCloser, error) {
	return nil, errors.New("not streamed")
}

// TestVizCheck runs `linkerd viz check` and `linkerd check` on fake
// clusters, with golden outputs.
func TestVizCheck(t *testing.T) {
	saved := version.Version
	version.Version = "test-1.2.3"
	t.Cleanup(func() { version.Version = saved })
	upBody := `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`

	tests := []struct {
		name     string
		args     []string
		cluster  func(t *testing.T) kubernetes.Interface
		wantCode int
		// selfCheck is the metrics API's SelfCheck answer; nil: not asked.
		selfCheck *vizv1.SelfCheckResponse
	}{
		{name: "viz_check", args: []string{"viz", "check"}, cluster: func(t *testing.T) kubernetes.Interface { t.Helper(); return vizCluster(t, upBody) },
			selfCheck: &vizv1.SelfCheckResponse{Results: []*vizv1.CheckResult{{Description: "can query Prometheus", Status: vizv1.CheckResult_OK}}}},
		{name: "viz_check_self_check_failed", args: []string{"viz", "check", "--wait", "100ms"}, wantCode: 1,
			cluster: func(t *testing.T) kubernetes.Interface { t.Helper(); return vizCluster(t, upBody) },
			selfCheck: &vizv1.SelfCheckResponse{Results: []*vizv1.CheckResult{
				{Description: "can query Prometheus", Status: vizv1.CheckResult_OK},
				{Description: "can list pods", Status: vizv1.CheckResult_FAILED, Message: "pods is forbidden"},
			}}},
		{name: "viz_check_not_installed", args: []string{"viz", "check"}, wantCode: 1,
			cluster: func(*testing.T) kubernetes.Interface { return fakeCluster() }},
		{name: "viz_check_proxy_missing_metrics", args: []string{"viz", "check", "--proxy", "-n", "default"}, wantCode: 0,
			cluster: func(t *testing.T) kubernetes.Interface {
				t.Helper()
				cs := vizCluster(t, upBody)
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{k8s.ControllerNSLabel: "linkerd"}},
					Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: k8s.ProxyContainerName}}},
					Status: corev1.PodStatus{Phase: corev1.PodRunning}}
				if _, err := cs.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				return cs
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cluster := tt.cluster(t)
			deps := checkDeps{
				newClient:     func() (kubernetes.Interface, error) { return cluster, nil },
				now:           func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
				retryInterval: 10 * time.Millisecond,
			}
			if tt.selfCheck != nil {
				deps.vizMetricsAPI = func(context.Context, string) (client.API, func(), error) {
					return selfCheckAPI{resp: tt.selfCheck}, func() {}, nil
				}
			}
			code := executeWithDeps(t, tt.args, deps, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			checkGolden(t, tt.name, code, stdout.String(), stderr.String())
		})
	}
}

// selfCheckAPI is a metrics API whose SelfCheck answers resp.
type selfCheckAPI struct {
	fakeMetricsAPI
	resp *vizv1.SelfCheckResponse
}

func (a selfCheckAPI) SelfCheck(context.Context, *vizv1.SelfCheckRequest) (*vizv1.SelfCheckResponse, error) {
	return a.resp, nil
}
