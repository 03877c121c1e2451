package healthcheck

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/pki"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func linkerdDataPlaneCategory() Category {
	return Category{ID: LinkerdDataPlane, Checks: []Check{
		{
			Description: "data plane namespace exists",
			HintAnchor:  "l5d-data-plane-exists",
			Fatal:       true,
			Run: func(ctx context.Context, s *State) error {
				if s.DataPlaneNamespace == "" {
					return Skip("all namespaces")
				}
				kube, err := s.client()
				if err != nil {
					return err
				}
				_, err = kube.CoreV1().Namespaces().Get(ctx, s.DataPlaneNamespace, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("the namespace %q does not exist", s.DataPlaneNamespace)
				}
				return err
			},
		},
		{
			Description: "data plane proxies are ready",
			HintAnchor:  "l5d-data-plane-ready",
			Retry:       true,
			Run: func(ctx context.Context, s *State) error {
				pods, err := s.dataPlanePods(ctx)
				if err != nil {
					return err
				}
				var problems []string
				for i := range pods {
					if ok, why := proxyReady(&pods[i]); !ok {
						problems = append(problems, pods[i].Namespace+": "+why)
					}
				}
				return JoinProblems(problems)
			},
		},
		{
			Description: "data plane and cli versions match",
			HintAnchor:  "l5d-data-plane-cli-version",
			Warning:     true,
			Run: func(ctx context.Context, s *State) error {
				pods, err := s.dataPlanePods(ctx)
				if err != nil {
					return Skip("no meshed pods") // reported by "data plane proxies are ready"
				}
				return proxyVersionsMatch(pods, s.CLIVersion)
			},
		},
		{
			Description: "opaque ports are properly annotated",
			HintAnchor:  "linkerd-opaque-ports-definition",
			Warning:     true,
			Run:         checkOpaquePorts,
		},
	}}
}

func linkerdIdentityDataPlaneCategory() Category {
	return Category{ID: LinkerdIdentityDataPlane, Checks: []Check{
		{
			Description: "data plane proxies certificate match CA",
			HintAnchor:  "l5d-identity-data-plane-proxies-certs-match-ca",
			Warning:     true,
			Run:         checkDataPlaneAnchors,
		},
	}}
}

// dataPlanePods returns the running or pending pods with a proxy of this
// control plane in the data-plane namespace (all namespaces when empty).
// Having none is an error: there is nothing to check.
func (s *State) dataPlanePods(ctx context.Context) ([]corev1.Pod, error) {
	kube, err := s.client()
	if err != nil {
		return nil, err
	}
	sel := labels.Set{k8s.ControllerNSLabel: s.ControlPlaneNamespace}.String()
	list, err := kube.CoreV1().Pods(s.DataPlaneNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing meshed pods: %w", err)
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
			continue
		}
		if k8s.ProxyContainer(&p) != nil {
			pods = append(pods, p)
		}
	}
	if len(pods) == 0 {
		where := "any namespace"
		if s.DataPlaneNamespace != "" {
			where = fmt.Sprintf("the %q namespace", s.DataPlaneNamespace)
		}
		return nil, fmt.Errorf("no %q containers found in %s: inject the workloads (kubectl get deploy -o yaml | linkerd inject - | kubectl apply -f -)", k8s.ProxyContainerName, where)
	}
	slices.SortFunc(pods, func(a, b corev1.Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return pods, nil
}

// checkDataPlaneAnchors compares each meshed pod's trust anchors with the
// control plane's: the proxy's LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS when
// given inline, else the pod's linkerd.io/trust-root-sha256 annotation.
func checkDataPlaneAnchors(ctx context.Context, s *State) error {
	pods, err := s.dataPlanePods(ctx)
	if err != nil {
		return Skip("no meshed pods") // reported by "data plane proxies are ready"
	}
	bundle, err := s.trustAnchorsPEM(ctx)
	if err != nil {
		return err
	}
	anchors, err := pki.DecodeCertificatesPEM([]byte(bundle))
	if err != nil {
		return fmt.Errorf("the control plane's trust anchors: %w", err)
	}
	// The annotation is the SHA-256 of the PEM as given at install; allow
	// for the whitespace the ConfigMap trims.
	sums := map[string]bool{}
	candidates := []string{bundle}
	if s.values != nil && s.values.IdentityTrustAnchorsPEM != "" {
		candidates = append(candidates, s.values.IdentityTrustAnchorsPEM)
	}
	for _, c := range candidates {
		for _, v := range []string{c, strings.TrimSpace(c), strings.TrimSpace(c) + "\n"} {
			sum := sha256.Sum256([]byte(v))
			sums[hex.EncodeToString(sum[:])] = true
		}
	}

	var mismatched, unknown []string
	for i := range pods {
		p := &pods[i]
		name := p.Namespace + "/" + p.Name
		if pem := proxyEnv(p, proxyenv.IdentityTrustAnchors); pem != "" {
			certs, err := pki.DecodeCertificatesPEM([]byte(pem))
			if err != nil || !sameCertificates(certs, anchors) {
				mismatched = append(mismatched, name)
			}
			continue
		}
		if sum, ok := p.Annotations[k8s.TrustRootSHA256Annotation]; ok {
			if !sums[strings.ToLower(strings.TrimSpace(sum))] {
				mismatched = append(mismatched, name)
			}
			continue
		}
		unknown = append(unknown, name)
	}
	var problems []string
	if len(mismatched) > 0 {
		problems = append(problems, fmt.Sprintf("%s other anchors than the control plane's: %s; restart them to pick up the current ones (kubectl rollout restart)", plural(len(mismatched), "pod's proxy trusts", "pods' proxies trust"), strings.Join(mismatched, ", ")))
	}
	if len(unknown) > 0 {
		problems = append(problems, fmt.Sprintf("cannot tell which trust anchors these proxies use (no inline %s, no %s annotation): %s", proxyenv.IdentityTrustAnchors, k8s.TrustRootSHA256Annotation, strings.Join(unknown, ", ")))
	}
	return JoinProblems(problems)
}

// proxyEnv returns the literal value of the proxy container's variable name.
func proxyEnv(pod *corev1.Pod, name string) string {
	c := k8s.ProxyContainer(pod)
	if c == nil {
		return ""
	}
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// sameCertificates reports whether a and b hold the same certificates, in any order.
func sameCertificates(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for _, c := range a {
		if !slices.ContainsFunc(b, func(d *x509.Certificate) bool { return pki.SameCertificate(c, d) }) {
			return false
		}
	}
	return true
}

// checkOpaquePorts compares, for each meshed pod and each Service selecting
// it, whether the pod and the Service agree on which ports are opaque: the
// pod's proxy decides for inbound traffic from its own annotation, clients'
// proxies from the Service's. Without annotation, both use the default
// opaque ports.
func checkOpaquePorts(ctx context.Context, s *State) error {
	kube, err := s.client()
	if err != nil {
		return err
	}
	pods, err := s.dataPlanePods(ctx)
	if err != nil {
		return Skip("no meshed pods")
	}
	services, err := kube.CoreV1().Services(s.DataPlaneNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	slices.SortFunc(services.Items, func(a, b corev1.Service) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	defaults := k8s.MustParsePortSet(k8s.DefaultOpaquePorts)
	var problems []string
	for i := range pods {
		pod := &pods[i]
		names := k8s.ContainerPortNames(pod)
		podAnn, podAnnotated := pod.Annotations[k8s.ProxyOpaquePortsAnnotation]
		podSet, _ := k8s.ParsePortSetNamed(podAnn, names)
		for _, svc := range services.Items {
			if svc.Namespace != pod.Namespace || len(svc.Spec.Selector) == 0 ||
				!labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
				continue
			}
			svcAnn, svcAnnotated := svc.Annotations[k8s.ProxyOpaquePortsAnnotation]
			svcSet, _ := k8s.ParsePortSet(svcAnn)
			for _, sp := range svc.Spec.Ports {
				if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
					continue
				}
				target, ok := targetPort(sp, names)
				if !ok {
					continue
				}
				podOpaque := defaults.Contains(target)
				if podAnnotated {
					podOpaque = podSet.Contains(target)
				}
				svcOpaque := defaults.Contains(target)
				if svcAnnotated {
					svcOpaque = svcSet.Contains(uint32(sp.Port))
				}
				switch {
				case svcOpaque && !podOpaque:
					problems = append(problems, fmt.Sprintf("service %s/%s expects target port %d of pod %s to be opaque: add it to the pod's %s annotation", svc.Namespace, svc.Name, target, pod.Name, k8s.ProxyOpaquePortsAnnotation))
				case podOpaque && !svcOpaque:
					problems = append(problems, fmt.Sprintf("pod %s/%s has port %d marked opaque: add %d to the %s annotation of service %s", pod.Namespace, pod.Name, target, sp.Port, k8s.ProxyOpaquePortsAnnotation, svc.Name))
				}
			}
		}
	}
	return JoinProblems(problems)
}

// targetPort resolves a Service port's target port on a pod.
func targetPort(sp corev1.ServicePort, names map[string]uint16) (uint32, bool) {
	switch {
	case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
		p, ok := names[sp.TargetPort.StrVal]
		return uint32(p), ok && p != 0
	case sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal > 0:
		return uint32(sp.TargetPort.IntVal), true
	}
	return uint32(sp.Port), sp.Port > 0
}
