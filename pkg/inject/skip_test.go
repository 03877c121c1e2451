package inject

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/linkerd-go/linkerd/pkg/k8s"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	enabled := map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectEnabled}
	disabled := map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectDisabled}
	ingress := map[string]string{k8s.ProxyInjectAnnotation: k8s.ProxyInjectIngress}
	bogus := map[string]string{k8s.ProxyInjectAnnotation: "yes"}

	tests := []struct {
		name    string
		podAnn  map[string]string
		nsAnn   map[string]string
		edit    func(*corev1.PodSpec)
		require bool
		want    Reason // "" = inject
		wantAt  string
	}{
		{name: "pod enabled", podAnn: enabled, require: true},
		{name: "pod ingress", podAnn: ingress, require: true},
		{name: "namespace enabled", nsAnn: enabled, require: true},
		{name: "namespace ingress", nsAnn: ingress, require: true},
		{name: "no annotation, webhook", require: true, want: InjectEnableAnnotationAbsent},
		{name: "no annotation, manual", require: false},
		{name: "pod disabled wins over namespace", podAnn: disabled, nsAnn: enabled, require: true, want: InjectDisableAnnotationPresent, wantAt: AtWorkload},
		{name: "pod enabled wins over namespace disabled", podAnn: enabled, nsAnn: disabled, require: true},
		{name: "namespace disabled", nsAnn: disabled, require: true, want: InjectDisableAnnotationPresent, wantAt: AtNamespace},
		{name: "manual honours disabled", podAnn: disabled, want: InjectDisableAnnotationPresent, wantAt: AtWorkload},
		{name: "invalid on pod", podAnn: bogus, nsAnn: enabled, require: true, want: InvalidInjectAnnotationPod, wantAt: AtWorkload},
		{name: "invalid on namespace", nsAnn: bogus, require: true, want: InvalidInjectAnnotationNS, wantAt: AtNamespace},
		{name: "host network", podAnn: enabled, require: true, want: HostNetworkEnabled,
			edit: func(s *corev1.PodSpec) { s.HostNetwork = true }},
		{name: "already injected", podAnn: enabled, require: true, want: SidecarExists,
			edit: func(s *corev1.PodSpec) {
				s.Containers = append(s.Containers, corev1.Container{Name: k8s.ProxyContainerName})
			}},
		{name: "native sidecar already injected", podAnn: enabled, require: true, want: SidecarExists,
			edit: func(s *corev1.PodSpec) {
				s.InitContainers = append(s.InitContainers, corev1.Container{Name: k8s.ProxyContainerName})
			}},
		{name: "linkerd-init present", podAnn: enabled, require: true, want: SidecarExists,
			edit: func(s *corev1.PodSpec) {
				s.InitContainers = append(s.InitContainers, corev1.Container{Name: k8s.InitContainerName})
			}},
		{name: "istio sidecar", podAnn: enabled, require: true, want: SidecarExists,
			edit: func(s *corev1.PodSpec) { s.Containers = append(s.Containers, corev1.Container{Name: "istio-proxy"}) }},
		{name: "udp port", podAnn: enabled, require: true, want: UDPPortsEnabled,
			edit: func(s *corev1.PodSpec) {
				s.Containers[0].Ports = append(s.Containers[0].Ports, corev1.ContainerPort{ContainerPort: 53, Protocol: corev1.ProtocolUDP})
			}},
		{name: "host network before annotation", podAnn: disabled, want: HostNetworkEnabled,
			edit: func(s *corev1.PodSpec) { s.HostNetwork = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod()
			pod.Annotations = tt.podAnn
			if tt.edit != nil {
				tt.edit(&pod.Spec)
			}
			skip := Check(workloadOf(pod), tt.nsAnn, tt.require)
			switch {
			case tt.want == "" && skip != nil:
				t.Fatalf("skipped (%s: %s), want injection", skip.Reason, skip.Message)
			case tt.want != "" && skip == nil:
				t.Fatalf("not skipped, want %s", tt.want)
			case skip != nil:
				if skip.Reason != tt.want || skip.At != tt.wantAt {
					t.Errorf("skip = %s at %q, want %s at %q", skip.Reason, skip.At, tt.want, tt.wantAt)
				}
				if skip.Message == "" {
					t.Error("skip without a message")
				}
			}
		})
	}
}

// TestInjectSkipHasNoPatch checks that Inject reports skips without a patch.
func TestInjectSkipHasNoPatch(t *testing.T) {
	t.Parallel()
	inj := testInjector(t, nil)
	pod := testPod()
	pod.Spec.HostNetwork = true
	res, err := inj.Inject(workloadOf(pod), nil, Options{RequireAnnotation: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skip == nil || res.Skip.Reason != HostNetworkEnabled || len(res.Patch) != 0 {
		t.Errorf("result = %+v", res)
	}
}
