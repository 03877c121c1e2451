package inject

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/linkerd-go/linkerd/charts/chartvalues"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	proxyconfig "github.com/linkerd-go/linkerd/proxy/config"
	"github.com/linkerd-go/linkerd/proxyinit"
)

func TestInjectDefaults(t *testing.T) {
	t.Parallel()
	inj := testInjector(t, nil)
	pod := testPod()
	got, res := mustInject(t, inj, pod, nil)
	if len(res.Warnings) > 0 {
		t.Errorf("warnings: %v", res.Warnings)
	}

	if n := got.Spec.Containers[0].Name; n != k8s.ProxyContainerName {
		t.Errorf("first container = %q, want the proxy first", n)
	}
	if len(got.Spec.Containers) != 2 || got.Spec.Containers[1].Name != "app" {
		t.Errorf("containers = %v", names(got.Spec.Containers))
	}
	if len(got.Spec.InitContainers) != 1 || got.Spec.InitContainers[0].Name != k8s.InitContainerName {
		t.Errorf("init containers = %v", names(got.Spec.InitContainers))
	}
	proxy := container(got.Spec.Containers, k8s.ProxyContainerName)

	// Ports, probes, hooks and security.
	wantPorts := map[string]int32{"linkerd-proxy": 4143, "linkerd-admin": 4191}
	for _, p := range proxy.Ports {
		if wantPorts[p.Name] != p.ContainerPort {
			t.Errorf("port %s = %d", p.Name, p.ContainerPort)
		}
		delete(wantPorts, p.Name)
	}
	if len(wantPorts) > 0 {
		t.Errorf("missing proxy ports %v", wantPorts)
	}
	if p := proxy.LivenessProbe; p == nil || p.HTTPGet.Path != "/live" || p.HTTPGet.Port.IntValue() != 4191 {
		t.Errorf("liveness probe = %+v", p)
	}
	if p := proxy.ReadinessProbe; p == nil || p.HTTPGet.Path != "/ready" || p.HTTPGet.Port.IntValue() != 4191 {
		t.Errorf("readiness probe = %+v", p)
	}
	if l := proxy.Lifecycle; l == nil || l.PostStart == nil || l.PostStart.Exec.Command[0] != "/usr/lib/linkerd/linkerd-await" {
		t.Errorf("postStart = %+v, want linkerd-await", l)
	}
	if sc := proxy.SecurityContext; sc == nil || *sc.RunAsUser != 2102 || !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("proxy securityContext = %+v", sc)
	}
	if proxy.Image != "cr.l5d.io/linkerd-go/proxy:test-1.2.3" {
		t.Errorf("image = %q", proxy.Image)
	}

	// Volumes and mounts.
	vols := map[string]corev1.Volume{}
	for _, v := range got.Spec.Volumes {
		vols[v.Name] = v
	}
	if v := vols["linkerd-identity-end-entity"]; v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
		t.Errorf("end-entity volume = %+v", v)
	}
	tok := vols["linkerd-identity-token"]
	if tok.Projected == nil || tok.Projected.Sources[0].ServiceAccountToken.Audience != k8s.IdentityTokenAudience ||
		tok.Projected.Sources[0].ServiceAccountToken.Path != "linkerd-identity-token" {
		t.Errorf("token volume = %+v", tok)
	}
	for _, c := range append(slices.Clone(got.Spec.InitContainers), *proxy) {
		for _, m := range c.VolumeMounts {
			if _, ok := vols[m.Name]; !ok {
				t.Errorf("container %s mounts unknown volume %s", c.Name, m.Name)
			}
		}
	}

	// Metadata.
	pem, _ := os.ReadFile("testdata/trust-anchors.pem")
	sum := sha256.Sum256(pem)
	wantAnn := map[string]string{
		k8s.CreatedByAnnotation:       "linkerd/test test-1.2.3",
		k8s.ProxyVersionAnnotation:    "test-1.2.3",
		k8s.TrustRootSHA256Annotation: hex.EncodeToString(sum[:]),
	}
	for k, v := range wantAnn {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
		}
	}
	wantLabels := map[string]string{
		"app":                      "web",
		k8s.ControllerNSLabel:      "linkerd",
		k8s.ProxyDeploymentLabel:   "web",
		k8s.WorkloadNamespaceLabel: "emojivoto",
	}
	for k, v := range wantLabels {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, got.Labels[k], v)
		}
	}
}

// TestProxyEnvParses feeds the injected environment, with the downward API
// values filled in as the kubelet would, to the proxy's own configuration
// parser: every variable must be understood.
func TestProxyEnvParses(t *testing.T) {
	t.Parallel()
	inj := testInjector(t, nil)
	pod := testPod()
	pod.Annotations = map[string]string{
		k8s.ProxyOpaquePortsAnnotation:                      "grpc,5000-5010",
		ProxyDisableInboundProtocolDetectTimeoutAnnotation:  "true",
		ProxyDisableOutboundProtocolDetectTimeoutAnnotation: "true",
		ProxyShutdownGracePeriodAnnotation:                  "30s",
		ProxyAdminShutdownAnnotation:                        Enabled,
		k8s.ProxyDefaultInboundPolicyAnnotation:             "all-authenticated",
		k8s.ProxyRequireIdentityOnInboundPortsAnnotation:    "8080,9000-9002",
		k8s.ProxyInjectAnnotation:                           k8s.ProxyInjectIngress,
	}
	got, _ := mustInject(t, inj, pod, nil)
	proxy := container(got.Spec.Containers, k8s.ProxyContainerName)

	field := map[string]string{
		"metadata.name": "web-abc", "metadata.namespace": "emojivoto",
		"spec.nodeName": "node-1", "spec.serviceAccountName": "web",
	}
	vars := map[string]string{}
	var environ []string
	for _, e := range proxy.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = field[e.ValueFrom.FieldRef.FieldPath]
		}
		for name, val := range vars { // $(VAR) expansion of earlier variables
			v = strings.ReplaceAll(v, "$("+name+")", val)
		}
		vars[e.Name] = v
		environ = append(environ, e.Name+"="+v)
	}
	cfg, err := proxyconfig.FromEnv(environ)
	if err != nil {
		t.Fatalf("the proxy rejects the injected environment: %v", err)
	}
	if len(cfg.Unknown) > 0 {
		t.Errorf("unknown proxy variables: %v", cfg.Unknown)
	}
	checks := []struct{ name, got, want string }{
		{"inbound ports", cfg.InboundPorts.String(), "8080,9090"},
		{"opaque ports", cfg.InboundOpaquePorts.String(), "5000-5010,9090"},
		{"local identity", cfg.Identity.LocalName, "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"},
		{"identity addr", cfg.Identity.SvcAddr, "linkerd-identity-headless.linkerd.svc.cluster.local.:8080"},
		{"destination addr", cfg.Destination.SvcAddr, "linkerd-dst-headless.linkerd.svc.cluster.local.:8086"},
		{"destination context", cfg.Destination.Context, `{"ns":"emojivoto", "nodeName":"node-1", "pod":"web-abc"}`},
		{"inbound listen", cfg.InboundListenAddr, "0.0.0.0:4143"},
		{"admin listen", cfg.AdminListenAddr, "0.0.0.0:4191"},
		{"inbound detect", cfg.InboundDetectTimeout.String(), "8760h0m0s"},
		{"grace", cfg.ShutdownGracePeriod.String(), "30s"},
		{"default inbound policy", cfg.Policy.DefaultPolicy, "all-authenticated"},
		{"require identity", cfg.Policy.RequireIdentityPorts.String(), "8080,9000-9002"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !cfg.Identity.Enabled || cfg.Identity.TrustAnchorsPEM == "" || cfg.Identity.TokenFile == "" {
		t.Errorf("identity = %+v", cfg.Identity)
	}
	if !cfg.IngressMode || !cfg.ShutdownEndpointEnabled {
		t.Errorf("ingress mode %v, shutdown endpoint %v, want both on", cfg.IngressMode, cfg.ShutdownEndpointEnabled)
	}
}

// TestProxyInitArgsParse runs linkerd-init's real command line parser (in
// --simulate mode) on the injected arguments.
func TestProxyInitArgsParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		edit  func(Values)
		ann   map[string]string
		check func(t *testing.T, args []string, out string)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, args []string, out string) {
				t.Helper()
				if argValue(args, "--firewall-bin-path") != "iptables-legacy" || argValue(args, "--firewall-save-bin-path") != "iptables-legacy-save" {
					t.Errorf("firewall binaries in %q", args)
				}
				if argValue(args, "--inbound-ports-to-ignore") != "4190,4191,4567,4568" {
					t.Errorf("inbound ports to ignore in %q", args)
				}
				if !strings.Contains(out, "4143") || !strings.Contains(out, "4140") {
					t.Errorf("simulated rules do not redirect to the proxy ports:\n%s", out)
				}
			},
		},
		{
			name: "nft and annotations",
			edit: func(v Values) { chartvalues.Set(v, "proxyInit.iptablesMode", "nft") },
			ann: map[string]string{
				k8s.ProxyIgnoreInboundPortsAnnotation:  "3306, 7000-7010",
				k8s.ProxyIgnoreOutboundPortsAnnotation: "443",
				k8s.ProxyIgnoreSubnetsAnnotation:       "10.1.0.0/16,192.168.2.0/24",
				ProxyUIDAnnotation:                     "3000",
				ProxyGIDAnnotation:                     "3001",
				k8s.ProxyInboundPortAnnotation:         "5143",
				CloseWaitTimeoutAnnotation:             "1h",
			},
			check: func(t *testing.T, args []string, _ string) {
				t.Helper()
				want := map[string]string{
					"--firewall-bin-path":        "iptables-nft",
					"--firewall-save-bin-path":   "iptables-nft-save",
					"--inbound-ports-to-ignore":  "4190,4191,3306,7000-7010",
					"--outbound-ports-to-ignore": "443",
					"--subnets-to-ignore":        "10.1.0.0/16,192.168.2.0/24",
					"--proxy-uid":                "3000",
					"--proxy-gid":                "3001",
					"--incoming-proxy-port":      "5143",
					"--timeout-close-wait-secs":  "3600",
				}
				for f, v := range want {
					if got := argValue(args, f); got != v {
						t.Errorf("%s = %q, want %q", f, got, v)
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inj := testInjector(t, tc.edit)
			pod := testPod()
			pod.Annotations = tc.ann
			got, res := mustInject(t, inj, pod, nil)
			if len(res.Warnings) > 0 {
				t.Errorf("warnings: %v", res.Warnings)
			}
			init := container(got.Spec.InitContainers, k8s.InitContainerName)
			if len(init.Command) != 1 || init.Command[0] != "/usr/lib/linkerd/linkerd2-proxy-init" {
				t.Errorf("command = %q", init.Command)
			}
			var stdout, stderr bytes.Buffer
			if code := proxyinit.Main(context.Background(), append(slices.Clone(init.Args), "--simulate"), &stdout, &stderr); code != 0 {
				t.Fatalf("linkerd-init %q: exit %d: %s", init.Args, code, stderr.String())
			}
			tc.check(t, init.Args, stdout.String())
		})
	}
}

func TestNativeSidecar(t *testing.T) {
	t.Parallel()
	inj := testInjector(t, nil)
	pod := testPod()
	pod.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "example/migrate"}}
	pod.Annotations = map[string]string{proxyEnableNativeSidecarAlpha: "true"}
	got, _ := mustInject(t, inj, pod, nil)
	if n := names(got.Spec.InitContainers); !slices.Equal(n, []string{k8s.InitContainerName, k8s.ProxyContainerName, "migrate"}) {
		t.Errorf("init containers = %v", n)
	}
	if n := names(got.Spec.Containers); !slices.Equal(n, []string{"app"}) {
		t.Errorf("containers = %v", n)
	}
	proxy := container(got.Spec.InitContainers, k8s.ProxyContainerName)
	if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("native proxy restartPolicy = %v", proxy.RestartPolicy)
	}
	if proxy.StartupProbe == nil || proxy.StartupProbe.HTTPGet.Path != "/ready" {
		t.Errorf("startupProbe = %+v", proxy.StartupProbe)
	}
	if proxy.Lifecycle != nil {
		t.Errorf("native sidecar has lifecycle hooks %+v", proxy.Lifecycle)
	}
}

func TestInitContainerOrder(t *testing.T) {
	t.Parallel()
	inj := testInjector(t, nil)
	pod := testPod()
	pod.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "example/migrate"}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	got, _ := mustInject(t, inj, pod, nil)
	if n := names(got.Spec.InitContainers); !slices.Equal(n, []string{"migrate", k8s.InitContainerName}) {
		t.Errorf("init containers = %v, want linkerd-init after the pod's own", n)
	}
	if len(got.Spec.Volumes) != 4 || got.Spec.Volumes[0].Name != "data" {
		t.Errorf("volumes = %+v", got.Spec.Volumes)
	}
}

func TestUninjectRestores(t *testing.T) {
	t.Parallel()
	inj := testInjector(t, nil)
	for _, native := range []bool{false, true} {
		pod := testPod()
		pod.Annotations = map[string]string{"keep": "me", ProxyEnableNativeSidecarAnnotation: "false"}
		if native {
			pod.Annotations[ProxyEnableNativeSidecarAnnotation] = "true"
		}
		pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		orig := toGeneric(t, pod)
		injected := toGeneric(t, applyToPodNoStrict(t, inj, pod))
		if !IsInjected(injected) {
			t.Fatal("IsInjected = false after injection")
		}
		if !Uninject(injected) {
			t.Fatal("Uninject reported no change")
		}
		if IsInjected(injected) {
			t.Fatal("IsInjected = true after uninjection")
		}
		if a, b := mustJSON(t, orig), mustJSON(t, injected); a != b {
			t.Errorf("native=%v: uninjected pod differs:\n got %s\nwant %s", native, b, a)
		}
		if Uninject(injected) {
			t.Error("second Uninject reported a change")
		}
	}
}

func names(cs []corev1.Container) []string {
	var n []string
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return n
}

func TestAdditionalEnvRendered(t *testing.T) {
	t.Parallel()
	inj := testInjector(t, nil)
	pod := testPod()
	pod.Annotations = map[string]string{
		ProxyAdditionalEnvAnnotation: `[{"name":"EXTRA","value":"1"},{"name":"FROM_FIELD","valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}}]`,
	}
	got, _ := mustInject(t, inj, pod, nil)
	env := container(got.Spec.Containers, k8s.ProxyContainerName).Env
	n := len(env)
	if n < 2 || env[n-2].Name != "EXTRA" || env[n-2].Value != "1" ||
		env[n-1].Name != "FROM_FIELD" || env[n-1].ValueFrom == nil || env[n-1].ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("last env entries = %+v, want the additional env", env[max(0, n-2):])
	}
}

// TestControlPlaneOverrides renders the proxy as the control plane's own
// pods do: loopback addresses and a version from the chart.
func TestControlPlaneOverrides(t *testing.T) {
	t.Parallel()
	inj := testInjector(t, func(v Values) {
		chartvalues.Set(v, "proxy.identitySvcAddr", "localhost.:8080")
		chartvalues.Set(v, "proxy.destinationSvcAddr", "localhost.:8086")
		chartvalues.Set(v, "disableIPv6", false)
	})
	got, _ := mustInject(t, inj, testPod(), nil)
	env := map[string]string{}
	for _, e := range container(got.Spec.Containers, k8s.ProxyContainerName).Env {
		env[e.Name] = e.Value
	}
	for name, want := range map[string]string{
		"LINKERD2_PROXY_IDENTITY_SVC_ADDR":     "localhost.:8080",
		"LINKERD2_PROXY_DESTINATION_SVC_ADDR":  "localhost.:8086",
		"LINKERD2_PROXY_INBOUND_LISTEN_ADDR":   "[::]:4143",
		"LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS": "127.0.0.1:4140,[::1]:4140",
	} {
		if env[name] != want {
			t.Errorf("%s = %q, want %q", name, env[name], want)
		}
	}
	init := container(got.Spec.InitContainers, k8s.InitContainerName)
	if !slices.Contains(init.Args, "--ipv6=true") {
		t.Errorf("linkerd-init args %q, want --ipv6=true", init.Args)
	}
}

// TestNamespaceConfigCopiedToPod: configuration inherited from the
// namespace is written on the pod (for the policy controller, which reads
// the pod), unless the pod has its own; the pod's own value stays.
func TestNamespaceConfigCopiedToPod(t *testing.T) {
	t.Parallel()
	inj := testInjector(t, nil)
	ns := map[string]string{
		k8s.ProxyDefaultInboundPolicyAnnotation: "all-authenticated",
		ProxyLogLevelAnnotation:                 "debug",
		"unrelated.example.com/x":               "y",
	}
	for _, tc := range []struct {
		name    string
		podAnn  map[string]string
		wantPol string
	}{
		{"inherited", nil, "all-authenticated"},
		{"pod wins", map[string]string{k8s.ProxyDefaultInboundPolicyAnnotation: "deny"}, "deny"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod()
			pod.Annotations = tc.podAnn
			got, _ := mustInject(t, inj, pod, ns)
			if v := got.Annotations[k8s.ProxyDefaultInboundPolicyAnnotation]; v != tc.wantPol {
				t.Errorf("pod's default-inbound-policy = %q, want %q", v, tc.wantPol)
			}
			if v := got.Annotations[ProxyLogLevelAnnotation]; v != "debug" {
				t.Errorf("pod's proxy-log-level = %q, want the namespace's", v)
			}
			if _, ok := got.Annotations["unrelated.example.com/x"]; ok {
				t.Error("a non-configuration namespace annotation was copied")
			}
			proxy := container(got.Spec.Containers, k8s.ProxyContainerName)
			found := false
			for _, e := range proxy.Env {
				if e.Name == "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY" {
					found = true
					if e.Value != tc.wantPol {
						t.Errorf("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY = %q, want %q", e.Value, tc.wantPol)
					}
				}
			}
			if !found {
				t.Error("no LINKERD2_PROXY_INBOUND_DEFAULT_POLICY")
			}
		})
	}
}
