package inject

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/linkerd-go/linkerd/charts/chartvalues"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// TestPodValues checks how annotations become chart values.
func TestPodValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		podAnn   map[string]string
		nsAnn    map[string]string
		want     map[string]any // path -> value
		warnings []string       // substrings, one per expected warning
	}{
		{
			name: "defaults and computed ports",
			want: map[string]any{
				"proxy.podInboundPorts": "8080,9090",
				"proxy.logLevel":        "warn,linkerd=info",
				"proxy.opaquePorts":     "",
			},
		},
		{
			name:   "pod wins over namespace",
			podAnn: map[string]string{ProxyLogLevelAnnotation: "debug"},
			nsAnn:  map[string]string{ProxyLogLevelAnnotation: "trace", ProxyLogFormatAnnotation: "json"},
			want:   map[string]any{"proxy.logLevel": "debug", "proxy.logFormat": "json"},
		},
		{
			name: "image and resources",
			podAnn: map[string]string{
				ProxyImageAnnotation:                 "example/proxy",
				ProxyVersionOverrideAnnotation:       "v9",
				ProxyImagePullPolicyAnnotation:       "Always",
				ProxyCPURequestAnnotation:            "100m",
				ProxyCPULimitAnnotation:              "1",
				ProxyMemoryRequestAnnotation:         "20Mi",
				ProxyMemoryLimitAnnotation:           "250Mi",
				ProxyEphemeralStorageLimitAnnotation: "1Gi",
			},
			want: map[string]any{
				"proxy.image.name": "example/proxy", "proxy.image.version": "v9", "proxy.image.pullPolicy": "Always",
				"proxy.resources.cpu.request": "100m", "proxy.resources.cpu.limit": "1",
				"proxy.resources.memory.request": "20Mi", "proxy.resources.memory.limit": "250Mi",
				"proxy.resources.ephemeral-storage.limit": "1Gi",
			},
		},
		{
			name: "ports",
			podAnn: map[string]string{
				k8s.ProxyAdminPortAnnotation: "5191", k8s.ProxyControlPortAnnotation: "5190",
				k8s.ProxyInboundPortAnnotation: "5143", k8s.ProxyOutboundPortAnnotation: "5140",
				k8s.ProxyPodInboundPortsAnnotation: "80,81",
				k8s.ProxyOpaquePortsAnnotation:     "http,4000-4010, 25",
			},
			want: map[string]any{
				"proxy.ports.admin": int64(5191), "proxy.ports.control": int64(5190),
				"proxy.ports.inbound": int64(5143), "proxy.ports.outbound": int64(5140),
				"proxy.podInboundPorts": "80,81",
				"proxy.opaquePorts":     "25,4000-4010,8080",
			},
		},
		{
			name: "booleans, durations and switches",
			podAnn: map[string]string{
				ProxyAdminShutdownAnnotation:                       Enabled,
				ProxyAwaitAnnotation:                               Disabled,
				ProxyEnableExternalProfilesAnnotation:              "true",
				ProxyDisableInboundProtocolDetectTimeoutAnnotation: "true",
				ProxyOutboundConnectTimeoutAnnotation:              "2s",
				ProxyInboundConnectTimeoutAnnotation:               "500ms",
				ProxyOutboundDiscoveryCacheUnusedTimeoutAnnotation: "10s",
				ProxyShutdownGracePeriodAnnotation:                 "45s",
				ProxyLogHTTPHeadersAnnotation:                      "insecure",
				ProxyWaitBeforeExitSecondsAnnotation:               "7",
				proxyEnableNativeSidecarBeta:                       "true",
				k8s.ProxyDefaultInboundPolicyAnnotation:            "deny",
			},
			want: map[string]any{
				"proxy.enableShutdownEndpoint": true, "proxy.await": false, "proxy.enableExternalProfiles": true,
				"proxy.disableInboundProtocolDetectTimeout": true,
				"proxy.outboundConnectTimeout":              "2s", "proxy.inboundConnectTimeout": "500ms",
				"proxy.outboundDiscoveryCacheUnusedTimeout": "10s", "proxy.shutdownGracePeriod": "45s",
				"proxy.logHTTPHeaders": "insecure", "proxy.waitBeforeExitSeconds": int64(7), "proxy.nativeSidecar": true,
				"proxy.defaultInboundPolicy": "deny",
			},
		},
		{
			name: "proxy-init settings",
			nsAnn: map[string]string{
				k8s.ProxyIgnoreInboundPortsAnnotation:  "3306",
				k8s.ProxyIgnoreOutboundPortsAnnotation: "443,8000-8100",
				k8s.ProxyIgnoreSubnetsAnnotation:       "10.0.0.0/8, fd00::/8",
				CloseWaitTimeoutAnnotation:             "90s",
				ProxyUIDAnnotation:                     "1234",
			},
			want: map[string]any{
				"proxyInit.ignoreInboundPorts": "3306", "proxyInit.ignoreOutboundPorts": "443,8000-8100",
				"proxyInit.skipSubnets": "10.0.0.0/8,fd00::/8", "proxyInit.closeWaitTimeoutSecs": int64(90),
				"proxy.uid": int64(1234),
			},
		},
		{
			name: "invalid values are ignored with a warning",
			podAnn: map[string]string{
				ProxyLogLevelAnnotation:          "loud",
				ProxyUIDAnnotation:               "-1",
				k8s.ProxyAdminPortAnnotation:     "70000",
				ProxyCPULimitAnnotation:          "lots",
				ProxyAwaitAnnotation:             "maybe",
				k8s.ProxyIgnoreSubnetsAnnotation: "10.0.0.0/33",
				k8s.ProxyOpaquePortsAnnotation:   "nosuchport",
				ProxyImagePullPolicyAnnotation:   "Sometimes",
			},
			want: map[string]any{
				"proxy.logLevel": "warn,linkerd=info", "proxy.uid": float64(2102), "proxy.ports.admin": float64(4191),
				"proxy.resources.cpu.limit": "", "proxy.await": true, "proxyInit.skipSubnets": "",
			},
			warnings: []string{
				ProxyLogLevelAnnotation, ProxyUIDAnnotation, k8s.ProxyAdminPortAnnotation, ProxyCPULimitAnnotation,
				ProxyAwaitAnnotation, k8s.ProxyIgnoreSubnetsAnnotation, k8s.ProxyOpaquePortsAnnotation, ProxyImagePullPolicyAnnotation,
			},
		},
		{
			name:   "additional env merged by name: chart < namespace < pod",
			nsAnn:  map[string]string{ProxyAdditionalEnvAnnotation: `[{"name":"A","value":"ns"},{"name":"B","value":"ns"}]`},
			podAnn: map[string]string{ProxyAdditionalEnvAnnotation: `[{"name":"B","value":"pod"},{"name":"C","valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}}]`},
			want: map[string]any{
				"proxy.additionalEnv": `[{"name":"BASE","value":"chart"},{"name":"A","value":"ns"},{"name":"B","value":"pod"},{"name":"C","valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}}]`,
			},
		},
		{
			name:     "additional env must be JSON",
			podAnn:   map[string]string{ProxyAdditionalEnvAnnotation: `A=1`},
			want:     map[string]any{"proxy.additionalEnv": `[{"name":"BASE","value":"chart"}]`},
			warnings: []string{ProxyAdditionalEnvAnnotation},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inj := testInjector(t, func(v Values) {
				chartvalues.Set(v, "proxy.additionalEnv", []any{map[string]any{"name": "BASE", "value": "chart"}})
			})
			pod := testPod()
			pod.Annotations = tt.podAnn
			values, warnings := inj.PodValues(workloadOf(pod), tt.nsAnn)
			for path, want := range tt.want {
				got := getPath(values, path)
				if path == "proxy.additionalEnv" {
					got = mustJSON(t, got)
				}
				if fmt.Sprintf("%T %v", got, got) != fmt.Sprintf("%T %v", want, want) {
					t.Errorf("%s = %T %v, want %T %v", path, got, got, want, want)
				}
			}
			if len(warnings) != len(tt.warnings) {
				t.Errorf("warnings = %q, want %d", warnings, len(tt.warnings))
			}
			for _, w := range tt.warnings {
				if !strings.Contains(strings.Join(warnings, "\n"), w) {
					t.Errorf("no warning about %s in %q", w, warnings)
				}
			}
		})
	}
}

func TestPodValuesWorkloadMetadata(t *testing.T) {
	t.Parallel()
	inj := testInjector(t, nil)
	for _, tt := range []struct {
		kind, name, ns string
		want           map[string]any
	}{
		{"deployment", "web", "emojivoto", map[string]any{k8s.ProxyDeploymentLabel: "web", k8s.WorkloadNamespaceLabel: "emojivoto"}},
		{"statefulset", "db", "data", map[string]any{k8s.ProxyStatefulSetLabel: "db", k8s.WorkloadNamespaceLabel: "data"}},
		{"cronjob", "nightly", "", map[string]any{k8s.ProxyCronJobLabel: "nightly"}},
		{"pod", "bare", "ns", map[string]any{k8s.WorkloadNamespaceLabel: "ns"}},
	} {
		pod := testPod()
		w := &Workload{Kind: tt.kind, Name: tt.name, Namespace: tt.ns, Meta: &pod.ObjectMeta, Spec: &pod.Spec}
		v, _ := inj.PodValues(w, nil)
		if got := mustJSON(t, getPath(v, "pod.labels")); got != mustJSON(t, tt.want) {
			t.Errorf("%s/%s labels = %s, want %s", tt.kind, tt.name, got, mustJSON(t, tt.want))
		}
		ann, _ := getPath(v, "pod.annotations").(map[string]any)
		if ann[k8s.CreatedByAnnotation] != "linkerd/test test-1.2.3" {
			t.Errorf("pod annotations = %v", ann)
		}
	}
}

func TestContainerPorts(t *testing.T) {
	t.Parallel()
	always := corev1.ContainerRestartPolicyAlways
	spec := &corev1.PodSpec{
		InitContainers: []corev1.Container{
			{Name: "setup", Ports: []corev1.ContainerPort{{ContainerPort: 1}}},
			{Name: "sidecar", RestartPolicy: &always, Ports: []corev1.ContainerPort{{ContainerPort: 7000}}},
		},
		Containers: []corev1.Container{
			{Name: "a", Ports: []corev1.ContainerPort{{ContainerPort: 9090}, {ContainerPort: 80}}},
			{Name: "b", Ports: []corev1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}}},
		},
	}
	if got := containerPorts(spec); got != "80,7000,9090" {
		t.Errorf("containerPorts = %q", got)
	}
}

func TestNewRequiresTrustAnchors(t *testing.T) {
	t.Parallel()
	v := testValues(t)
	v["identityTrustAnchorsPEM"] = " \n"
	if _, err := New(v, ""); !errors.Is(err, ErrNoTrustAnchors) {
		t.Errorf("New without trust anchors = %v, want ErrNoTrustAnchors", err)
	}
}

func TestParseValuesFillsDefaults(t *testing.T) {
	t.Parallel()
	v, err := ParseValues([]byte("controllerNamespace: mesh\nproxy:\n  logLevel: debug\n"))
	if err != nil {
		t.Fatal(err)
	}
	if chartvalues.String(v, "controllerNamespace") != "mesh" || chartvalues.String(v, "proxy.logLevel") != "debug" {
		t.Errorf("stored values lost: %v", v)
	}
	if chartvalues.String(v, "proxy.image.name") == "" || chartvalues.String(v, "proxyInit.iptablesMode") == "" {
		t.Error("defaults not filled in")
	}
	if _, err := ParseValues([]byte("proxy: [")); err == nil {
		t.Error("ParseValues accepted invalid YAML")
	}
}

// getPath returns the value at a dotted path of v, nil when absent.
func getPath(v Values, path string) any {
	x, _ := chartvalues.Get(v, path)
	return x
}
