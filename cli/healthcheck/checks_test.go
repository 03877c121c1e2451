package healthcheck

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/golden"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/pki"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// fastOptions make retried checks give up quickly.
var fastOptions = Options{Wait: 50 * time.Millisecond, RetryInterval: 10 * time.Millisecond, HintBaseURL: "https://linkerd.io/2/checks/#"}

// want is the expected outcome of one check, by description.
type want struct {
	status Status
	// contains must be in the error (or note).
	contains string
}

// checkResults runs cats on s and returns the final results by description.
func checkResults(t *testing.T, cats []Category, s *State) (bool, map[string]Result, []Result) {
	t.Helper()
	byDesc := map[string]Result{}
	var ordered []Result
	success := Run(context.Background(), cats, s, fastOptions, func(r Result) {
		if r.Retrying {
			return
		}
		if _, dup := byDesc[r.Description]; dup {
			t.Errorf("check %q reported twice", r.Description)
		}
		byDesc[r.Description] = r
		ordered = append(ordered, r)
	})
	return success, byDesc, ordered
}

func assertResults(t *testing.T, got map[string]Result, wants map[string]want) {
	t.Helper()
	for desc, w := range wants {
		r, ok := got[desc]
		if w.status == "" {
			if ok {
				t.Errorf("check %q ran (%s), want it not reported", desc, r.Status)
			}
			continue
		}
		if !ok {
			t.Errorf("check %q not reported", desc)
			continue
		}
		if r.Status != w.status {
			t.Errorf("check %q: status %s (%v), want %s", desc, r.Status, r.Err, w.status)
		}
		text := r.Note
		if r.Err != nil {
			text = r.Err.Error()
		}
		if w.contains != "" && !strings.Contains(text, w.contains) {
			t.Errorf("check %q: message %q does not contain %q", desc, text, w.contains)
		}
	}
}

// assertOthersPass fails for any reported check not in wants that did not succeed.
func assertOthersPass(t *testing.T, results []Result, wants map[string]want) {
	t.Helper()
	for _, r := range results {
		if _, ok := wants[r.Description]; !ok && r.Status != StatusSuccess {
			t.Errorf("check %q: unexpected %s: %v", r.Description, r.Status, r.Err)
		}
	}
}

func TestControlPlaneChecks(t *testing.T) {
	tests := []struct {
		name        string
		alter       func(w *world)
		wants       map[string]want
		wantSuccess bool
	}{
		{
			name:        "healthy",
			alter:       func(*world) {},
			wantSuccess: true,
			wants:       map[string]want{"can determine the CLI version": {StatusSuccess, "not checked"}},
		},
		{
			name:  "not installed",
			alter: func(w *world) { remove[*corev1.ConfigMap](w, k8s.ConfigMapName) },
			wants: map[string]want{
				"'linkerd-config' config map exists": {StatusError, "is Linkerd installed"},
				"control plane pods are ready":       {}, // the run stopped
				"certificate config is valid":        {},
			},
		},
		{
			name:  "kubernetes too old",
			alter: func(w *world) { w.k8sVersion = "v1.27.3" },
			wants: map[string]want{"is running the minimum Kubernetes API version": {StatusError, "1.29.0 or later is required"}},
		},
		{
			name: "expired issuer",
			alter: func(w *world) {
				issuer, err := w.anchor.NewIssuerWithValidity("identity.linkerd.cluster.local", validity(-400*day, -day))
				if err != nil {
					t.Fatal(err)
				}
				w.setIssuer(issuer)
			},
			wants: map[string]want{
				"issuer cert is within its validity period": {StatusError, "expired at 2026-02-28T12:00:00Z"},
				"issuer cert is valid for at least 60 days": {StatusWarning, "expires at"},
				"issuer cert is issued by the trust anchor": {StatusSuccess, ""},
			},
		},
		{
			name: "issuer not signed by the anchors",
			alter: func(w *world) {
				other, err := pki.NewCAWithValidity("other-root", validity(-day, 3650*day))
				if err != nil {
					t.Fatal(err)
				}
				issuer, err := other.NewIssuerWithValidity("identity.linkerd.cluster.local", validity(-day, 365*day))
				if err != nil {
					t.Fatal(err)
				}
				w.setIssuer(issuer)
			},
			wants: map[string]want{"issuer cert is issued by the trust anchor": {StatusError, "not signed by any of the 1 trust anchors"}},
		},
		{
			name:  "issuer with an RSA key",
			alter: func(w *world) { w.rsaIssuerSecret() },
			wants: map[string]want{"issuer cert is using supported crypto algorithm": {StatusError, "public key is RSA, want ECDSA P-256"}},
		},
		{
			name: "issuer key does not match",
			alter: func(w *world) {
				other, err := w.anchor.NewIssuerWithValidity("identity.linkerd.cluster.local", validity(-day, 365*day))
				if err != nil {
					t.Fatal(err)
				}
				mixed := *w.issuer
				mixed.Key = other.Key
				w.setIssuer(&mixed)
			},
			wants: map[string]want{
				"certificate config is valid":                        {StatusError, "does not match its certificate"},
				"issuer cert is within its validity period":          {}, // fatal
				"control plane proxies are healthy":                  {},
				"proxy-injector webhook has valid cert":              {},
				"trust anchors are using supported crypto algorithm": {},
			},
		},
		{
			name: "anchors expire within 60 days",
			alter: func(w *world) {
				anchor, err := pki.NewCAWithValidity("root.linkerd.cluster.local", validity(-300*day, 30*day))
				if err != nil {
					t.Fatal(err)
				}
				issuer, err := anchor.NewIssuerWithValidity("identity.linkerd.cluster.local", validity(-day, 20*day))
				if err != nil {
					t.Fatal(err)
				}
				pemText := string(pki.EncodeCertificatesPEM(anchor.Cert))
				get[*corev1.ConfigMap](w, k8s.TrustRootsConfigMapName).Data[k8s.TrustRootsKey] = pemText
				w.setIssuer(issuer)
			},
			wantSuccess: true,
			wants: map[string]want{
				"trust anchors are valid for at least 60 days": {StatusWarning, "expires at 2026-03-31T12:00:00Z"},
				"issuer cert is valid for at least 60 days":    {StatusWarning, "expires at 2026-03-21T12:00:00Z"},
			},
		},
		{
			name: "missing ClusterRole and CRD",
			alter: func(w *world) {
				remove[*rbacv1.ClusterRole](w, "linkerd-linkerd-identity")
				w.resources = w.resources[:2]
			},
			wants: map[string]want{
				"control plane ClusterRoles exist":                    {StatusError, "missing linkerd-linkerd-identity"},
				"control plane CustomResourceDefinitions exist":       {StatusError, "servers.policy.linkerd.io"},
				"control plane ClusterRoleBindings exist":             {StatusSuccess, ""},
				"control plane ValidatingWebhookConfigurations exist": {StatusSuccess, ""},
			},
		},
		{
			name: "no destination pods",
			alter: func(w *world) {
				remove[*corev1.Pod](w, "linkerd-destination-5d8f7c-abcde")
			},
			wants: map[string]want{
				"control plane pods are ready":      {StatusError, `no running pods for "linkerd-destination"`},
				"control plane proxies are healthy": {},
			},
		},
		{
			name: "identity pod not ready",
			alter: func(w *world) {
				p := get[*corev1.Pod](w, "linkerd-identity-5d8f7c-abcde")
				p.Status.Conditions[0].Status = corev1.ConditionFalse
				p.Status.ContainerStatuses[1] = corev1.ContainerStatus{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}
			},
			wants: map[string]want{"control plane pods are ready": {StatusError, `container app in pod "linkerd-identity-5d8f7c-abcde" is not ready: CrashLoopBackOff`}},
		},
		{
			name: "unschedulable and failing rollout",
			alter: func(w *world) {
				p := w.meshedPod(testNS, "linkerd-destination-5d8f7c-zzzzz", map[string]string{k8s.ControllerComponentLabel: k8s.DestinationComponent})
				p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 Insufficient cpu."}}}
				w.add(p)
				d := get[*appsv1.Deployment](w, k8s.ProxyInjectorDeploymentName)
				d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Message: `pods "x" is forbidden: exceeded quota`}}
			},
			wants: map[string]want{
				"no unschedulable pods":                {StatusError, "Insufficient cpu"},
				"control plane replica sets are ready": {StatusError, `deployment "linkerd-proxy-injector": cannot create pods: pods "x" is forbidden: exceeded quota`},
				"control plane pods are ready":         {StatusSuccess, ""},
				"control plane proxies are healthy":    {StatusError, `pod "linkerd-destination-5d8f7c-zzzzz" is Pending`},
			},
		},
		{
			name: "one control plane proxy not ready",
			alter: func(w *world) {
				p := w.meshedPod(testNS, "linkerd-destination-5d8f7c-bbbbb", map[string]string{k8s.ControllerComponentLabel: k8s.DestinationComponent})
				p.Status.ContainerStatuses[0].Ready = false
				p.Status.Conditions[0].Status = corev1.ConditionFalse
				w.add(p)
			},
			wants: map[string]want{
				"control plane pods are ready":      {StatusSuccess, ""},
				"control plane proxies are healthy": {StatusError, `container linkerd-proxy in pod "linkerd-destination-5d8f7c-bbbbb" is not ready`},
			},
		},
		{
			name: "versions differ",
			alter: func(w *world) {
				cm := get[*corev1.ConfigMap](w, k8s.ConfigMapName)
				cm.Data[k8s.ConfigValuesKey] = strings.Replace(cm.Data[k8s.ConfigValuesKey], testVersion, "test-0.9.0", 1)
				get[*corev1.Pod](w, "linkerd-identity-5d8f7c-abcde").Annotations[k8s.ProxyVersionAnnotation] = "test-0.9.0"
			},
			wantSuccess: true,
			wants: map[string]want{
				"control plane and cli versions match":         {StatusWarning, "control plane running test-0.9.0 but cli running test-1.0.0"},
				"control plane proxies and cli versions match": {StatusWarning, "linkerd/linkerd-identity-5d8f7c-abcde (test-0.9.0)"},
			},
		},
		{
			name: "version from the controller image",
			alter: func(w *world) {
				cm := get[*corev1.ConfigMap](w, k8s.ConfigMapName)
				cm.Data[k8s.ConfigValuesKey] = strings.Replace(cm.Data[k8s.ConfigValuesKey], "linkerdVersion: "+testVersion, "linkerdVersion: \"\"", 1)
			},
			wantSuccess: true,
			wants:       map[string]want{"control plane and cli versions match": {StatusSuccess, ""}},
		},
		{
			name: "webhook caBundle does not match",
			alter: func(w *world) {
				other, err := pki.NewCAWithValidity("other", validity(-day, 365*day))
				if err != nil {
					t.Fatal(err)
				}
				mwc := get[*admissionv1.MutatingWebhookConfiguration](w, k8s.ProxyInjectorWebhookConfigName)
				mwc.Webhooks[0].ClientConfig.CABundle = pki.EncodeCertificatesPEM(other.Cert)
			},
			wants: map[string]want{
				"proxy-injector webhook has valid cert":             {StatusError, "caBundle of webhook linkerd-proxy-injector.linkerd.io"},
				"proxy-injector cert is valid for at least 60 days": {StatusSuccess, ""},
				"sp-validator webhook has valid cert":               {StatusSuccess, ""},
			},
		},
		{
			name: "webhook cert for the wrong name and expiring",
			alter: func(w *world) {
				w.setWebhookCert(webhooks[1], w.webhookCA, validity(-day, 10*day), "elsewhere.svc")
			},
			wants: map[string]want{
				"sp-validator webhook has valid cert":               {StatusError, "not valid for linkerd-sp-validator.linkerd.svc"},
				"sp-validator cert is valid for at least 60 days":   {StatusWarning, "expires at 2026-03-11T12:00:00Z"},
				"proxy-injector webhook has valid cert":             {StatusSuccess, ""},
				"proxy-injector cert is valid for at least 60 days": {StatusSuccess, ""},
			},
		},
		{
			name: "expired webhook cert",
			alter: func(w *world) {
				w.setWebhookCert(webhooks[0], w.webhookCA, validity(-100*day, -day), "linkerd-proxy-injector.linkerd.svc")
			},
			wants: map[string]want{
				"proxy-injector webhook has valid cert":             {StatusError, "expired at 2026-02-28T12:00:00Z"},
				"proxy-injector cert is valid for at least 60 days": {StatusWarning, ""},
			},
		},
		{
			name: "policy controller not ready",
			alter: func(w *world) {
				pod := get[*corev1.Pod](w, k8s.DestinationDeploymentName+"-5d8f7c-abcde")
				pod.Status.ContainerStatuses[len(pod.Status.ContainerStatuses)-1].Ready = false
			},
			wants: map[string]want{
				"policy controller and policy-validator are running": {StatusError, "the policy-validator container of pod linkerd-destination-5d8f7c-abcde is not ready"},
				"policy-validator webhook has valid cert":            {StatusSuccess, ""},
			},
		},
		{
			name: "no sp-validator (optional)",
			alter: func(w *world) {
				remove[*corev1.Secret](w, k8s.SPValidatorTLSSecretName)
				remove[*admissionv1.ValidatingWebhookConfiguration](w, k8s.SPValidatorWebhookConfigName)
			},
			wantSuccess: true,
			wants: map[string]want{
				"control plane ValidatingWebhookConfigurations exist": {StatusSuccess, ""},
				"sp-validator webhook has valid cert":                 {},
				"sp-validator cert is valid for at least 60 days":     {},
				"proxy-injector webhook has valid cert":               {StatusSuccess, ""},
			},
		},
		{
			name: "sp-validator configuration missing",
			alter: func(w *world) {
				remove[*admissionv1.ValidatingWebhookConfiguration](w, k8s.SPValidatorWebhookConfigName)
			},
			wants: map[string]want{
				"control plane ValidatingWebhookConfigurations exist": {StatusError, "missing linkerd-sp-validator-webhook-config"},
				"sp-validator webhook has valid cert":                 {StatusError, "the webhook configuration linkerd-sp-validator-webhook-config does not exist"},
			},
		},
		{
			name: "webhook certificate with its CA in tls.crt",
			alter: func(w *world) {
				sec := get[*corev1.Secret](w, k8s.ProxyInjectorTLSSecretName)
				sec.Data[tlsCertKey] = append(sec.Data[tlsCertKey], pki.EncodeCertificatesPEM(w.webhookCA.Cert)...)
			},
			wantSuccess: true,
			wants:       map[string]want{"proxy-injector webhook has valid cert": {StatusSuccess, ""}},
		},
		{
			name: "pod network outside clusterNetworks",
			alter: func(w *world) {
				get[*corev1.Node](w, "node-1").Spec.PodCIDRs = []string{"10.244.0.0/24", "192.168.7.0/24"}
			},
			wantSuccess: true,
			wants:       map[string]want{"cluster networks contains all node podCIDRs": {StatusWarning, "192.168.7.0/24 (node node-1)"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := healthyWorld(t)
			tt.alter(w)
			success, got, ordered := checkResults(t, ControlPlaneCategories(), w.state(""))
			if success != tt.wantSuccess {
				t.Errorf("success = %v, want %v", success, tt.wantSuccess)
			}
			assertResults(t, got, tt.wants)
			assertOthersPass(t, ordered, tt.wants)
		})
	}
}

func TestDataPlaneChecks(t *testing.T) {
	tests := []struct {
		name        string
		ns          string
		alter       func(w *world)
		wants       map[string]want
		wantSuccess bool
	}{
		{name: "healthy", ns: appNS, alter: func(*world) {}, wantSuccess: true},
		{name: "healthy, all namespaces", alter: func(*world) {}, wantSuccess: true,
			wants: map[string]want{"data plane namespace exists": {}}},
		{
			name:  "namespace missing",
			ns:    "nope",
			alter: func(*world) {},
			wants: map[string]want{
				"data plane namespace exists":  {StatusError, `the namespace "nope" does not exist`},
				"data plane proxies are ready": {},
			},
		},
		{
			name:  "no meshed pods",
			ns:    appNS,
			alter: func(w *world) { remove[*corev1.Pod](w, "web-7f9c6d-xyz12") },
			wants: map[string]want{
				"data plane proxies are ready":            {StatusError, `no "linkerd-proxy" containers found in the "emojivoto" namespace`},
				"data plane and cli versions match":       {},
				"data plane proxies certificate match CA": {},
				"opaque ports are properly annotated":     {},
			},
		},
		{
			name: "proxy not ready",
			ns:   appNS,
			alter: func(w *world) {
				p := get[*corev1.Pod](w, "web-7f9c6d-xyz12")
				p.Status.ContainerStatuses[0] = corev1.ContainerStatus{Name: k8s.ProxyContainerName, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}
			},
			wants: map[string]want{"data plane proxies are ready": {StatusError, `emojivoto: container linkerd-proxy in pod "web-7f9c6d-xyz12" is not ready: ImagePullBackOff`}},
		},
		{
			name: "native sidecar proxy",
			ns:   appNS,
			alter: func(w *world) {
				p := get[*corev1.Pod](w, "web-7f9c6d-xyz12")
				always := corev1.ContainerRestartPolicyAlways
				proxy := p.Spec.Containers[0]
				proxy.RestartPolicy = &always
				p.Spec.InitContainers = []corev1.Container{proxy}
				p.Spec.Containers = p.Spec.Containers[1:]
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{p.Status.ContainerStatuses[0]}
				p.Status.ContainerStatuses = p.Status.ContainerStatuses[1:]
			},
			wantSuccess: true,
		},
		{
			name: "other trust anchors (annotation)",
			ns:   appNS,
			alter: func(w *world) {
				get[*corev1.Pod](w, "web-7f9c6d-xyz12").Annotations[k8s.TrustRootSHA256Annotation] = strings.Repeat("ab", 32)
			},
			wantSuccess: true,
			wants:       map[string]want{"data plane proxies certificate match CA": {StatusWarning, "emojivoto/web-7f9c6d-xyz12"}},
		},
		{
			name: "other trust anchors (environment)",
			ns:   appNS,
			alter: func(w *world) {
				other, err := pki.NewCAWithValidity("other", validity(-day, 365*day))
				if err != nil {
					t.Fatal(err)
				}
				p := get[*corev1.Pod](w, "web-7f9c6d-xyz12")
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", Value: string(pki.EncodeCertificatesPEM(other.Cert))}}
			},
			wantSuccess: true,
			wants:       map[string]want{"data plane proxies certificate match CA": {StatusWarning, "1 pod's proxy trusts other anchors"}},
		},
		{
			name: "same anchors (environment), ConfigMap trimmed",
			ns:   appNS,
			alter: func(w *world) {
				cm := get[*corev1.ConfigMap](w, k8s.TrustRootsConfigMapName)
				cm.Data[k8s.TrustRootsKey] = strings.TrimSpace(cm.Data[k8s.TrustRootsKey])
				p := get[*corev1.Pod](w, "web-7f9c6d-xyz12")
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", Value: w.anchorsPEM}}
			},
			wantSuccess: true,
		},
		{
			name: "old proxy version",
			ns:   appNS,
			alter: func(w *world) {
				get[*corev1.Pod](w, "web-7f9c6d-xyz12").Annotations[k8s.ProxyVersionAnnotation] = "test-0.5.0"
			},
			wantSuccess: true,
			wants:       map[string]want{"data plane and cli versions match": {StatusWarning, "emojivoto/web-7f9c6d-xyz12 (test-0.5.0)"}},
		},
		{
			name: "opaque ports disagree",
			ns:   appNS,
			alter: func(w *world) {
				svc := get[*corev1.Service](w, "web-svc")
				svc.Annotations = map[string]string{k8s.ProxyOpaquePortsAnnotation: "80"}
				w.add(&corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: "web-db", Namespace: appNS},
					Spec: corev1.ServiceSpec{
						Selector: map[string]string{"app": "web"},
						Ports:    []corev1.ServicePort{{Port: 3306, TargetPort: intstr.FromInt32(3306)}},
					},
				})
			},
			wantSuccess: true,
			wants: map[string]want{"opaque ports are properly annotated": {StatusWarning,
				"service emojivoto/web-svc expects target port 8080 of pod web-7f9c6d-xyz12 to be opaque"}},
		},
		{
			name: "opaque ports agree",
			ns:   appNS,
			alter: func(w *world) {
				get[*corev1.Service](w, "web-svc").Annotations = map[string]string{k8s.ProxyOpaquePortsAnnotation: "80"}
				get[*corev1.Pod](w, "web-7f9c6d-xyz12").Annotations[k8s.ProxyOpaquePortsAnnotation] = "http"
			},
			wantSuccess: true,
		},
		{
			name: "pod opaque, service not",
			ns:   appNS,
			alter: func(w *world) {
				get[*corev1.Pod](w, "web-7f9c6d-xyz12").Annotations[k8s.ProxyOpaquePortsAnnotation] = "8080"
			},
			wantSuccess: true,
			wants: map[string]want{"opaque ports are properly annotated": {StatusWarning,
				"pod emojivoto/web-7f9c6d-xyz12 has port 8080 marked opaque: add 80 to the config.linkerd.io/opaque-ports annotation of service web-svc"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := healthyWorld(t)
			tt.alter(w)
			success, got, ordered := checkResults(t, DataPlaneCategories(), w.state(tt.ns))
			if success != tt.wantSuccess {
				t.Errorf("success = %v, want %v", success, tt.wantSuccess)
			}
			assertResults(t, got, tt.wants)
			assertOthersPass(t, ordered, tt.wants)
			if tt.wantSuccess {
				for _, d := range []string{"data plane proxies are ready", "data plane proxies certificate match CA", "opaque ports are properly annotated"} {
					if _, ok := got[d]; !ok {
						t.Errorf("check %q not reported", d)
					}
				}
			}
		})
	}
}

func TestPreInstallChecks(t *testing.T) {
	tests := []struct {
		name        string
		alter       func(w *world)
		wants       map[string]want
		wantSuccess bool
	}{
		{name: "ready", alter: func(*world) {}, wantSuccess: true},
		{
			name:  "namespace exists",
			alter: func(w *world) { w.add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}}) },
			wants: map[string]want{"control plane namespace does not already exist": {StatusError, `the "linkerd" namespace already exists`}},
		},
		{
			name:  "cannot create cluster roles",
			alter: func(w *world) { w.denied["create clusterroles.rbac.authorization.k8s.io"] = true },
			wants: map[string]want{"can create non-namespaced resources": {StatusError, "missing permission to create clusterroles.rbac.authorization.k8s.io (RBAC: not allowed)"}},
		},
		{
			name: "cannot create or read secrets",
			alter: func(w *world) {
				w.denied["create secrets"] = true
				w.denied["get secrets"] = true
			},
			wants: map[string]want{
				"can create Secrets": {StatusError, "missing permission to create secrets in namespace linkerd"},
				"can read Secrets":   {StatusError, "missing permission to get secrets in namespace linkerd"},
			},
		},
		{
			name:        "cannot read the authentication configmap",
			alter:       func(w *world) { w.denied["get configmaps"] = true },
			wantSuccess: true,
			wants: map[string]want{"can read extension-apiserver-authentication configmap": {StatusWarning,
				"get configmaps extension-apiserver-authentication in namespace kube-system"}},
		},
		{
			name: "API server clock ahead",
			alter: func(w *world) {
				w.serverTime = func(context.Context) (time.Time, error) { return testNow.Add(5 * time.Minute), nil }
			},
			wantSuccess: true,
			wants:       map[string]want{"no clock skew detected": {StatusWarning, "the API server's clock is 4m59s off"}},
		},
		{
			name: "node heartbeat in the future",
			alter: func(w *world) {
				n := get[*corev1.Node](w, "node-1")
				n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(testNow.Add(10 * time.Minute))
			},
			wantSuccess: true,
			wants:       map[string]want{"no clock skew detected": {StatusWarning, "node node-1 reported its status 10m0s in this machine's future"}},
		},
		{
			name: "clocks agree",
			alter: func(w *world) {
				w.serverTime = func(context.Context) (time.Time, error) {
					return testNow.Add(-500 * time.Millisecond).Truncate(time.Second), nil
				}
			},
			wantSuccess: true,
			wants:       map[string]want{"no clock skew detected": {StatusSuccess, ""}},
		},
		{
			name:        "old kubectl",
			alter:       func(w *world) { w.kubectl = func(context.Context) (string, error) { return "v1.25.0", nil } },
			wantSuccess: true,
			wants:       map[string]want{"is running the minimum kubectl version": {StatusWarning, "kubectl is version v1.25.0 but 1.29.0 or later is required"}},
		},
		{
			name: "no kubectl",
			alter: func(w *world) {
				w.kubectl = func(context.Context) (string, error) { return "", errors.New("kubectl not found") }
			},
			wantSuccess: true,
			wants:       map[string]want{"is running the minimum kubectl version": {StatusWarning, "kubectl not found"}},
		},
		{
			name:  "API unreachable",
			alter: func(w *world) {},
			wants: map[string]want{
				"can initialize the client":    {StatusError, "no kubeconfig"},
				"can query the Kubernetes API": {},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := emptyWorld(t)
			tt.alter(w)
			s := w.state("")
			if tt.name == "API unreachable" {
				s.Kube = nil
				s.NewClient = func() (kubernetes.Interface, error) { return nil, errors.New("no kubeconfig") }
			}
			success, got, ordered := checkResults(t, PreInstallCategories(), s)
			if success != tt.wantSuccess {
				t.Errorf("success = %v, want %v", success, tt.wantSuccess)
			}
			assertResults(t, got, tt.wants)
			assertOthersPass(t, ordered, tt.wants)
		})
	}
}

// TestGoldenOutputs pins the complete table output of a few runs.
func TestGoldenOutputs(t *testing.T) {
	tests := []struct {
		name  string
		cats  func() []Category
		world func(t *testing.T) *world
		ns    string
	}{
		{"check_pre", PreInstallCategories, emptyWorld, ""},
		{"check_healthy", ControlPlaneCategories, healthyWorld, ""},
		{"check_proxy_healthy", DataPlaneCategories, healthyWorld, appNS},
		{"check_expired_issuer", ControlPlaneCategories, func(t *testing.T) *world {
			t.Helper()
			w := healthyWorld(t)
			issuer, err := w.anchor.NewIssuerWithValidity("identity.linkerd.cluster.local", validity(-400*day, -day))
			if err != nil {
				t.Fatal(err)
			}
			w.setIssuer(issuer)
			return w
		}, ""},
		{"check_not_installed", ControlPlaneCategories, emptyWorld, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out := runAll(t, tt.cats(), tt.world(t).state(tt.ns), fastOptions)
			golden.Check(t, tt.name+".table", out[TableOutput])
			golden.Check(t, tt.name+".json", out[JSONOutput])
		})
	}
}

func TestServerVersion(t *testing.T) {
	ctx := context.Background()
	w := healthyWorld(t)
	if v, err := ServerVersion(ctx, w.state("").Kube, testNS); err != nil || v != testVersion {
		t.Errorf("installed: ServerVersion = %q, %v; want %q", v, err, testVersion)
	}

	cm := get[*corev1.ConfigMap](w, k8s.ConfigMapName)
	cm.Data[k8s.ConfigValuesKey] = "linkerdVersion: \"\"\n"
	d := get[*appsv1.Deployment](w, k8s.IdentityDeploymentName)
	d.Spec.Template.Spec.Containers[1].Image = "registry.local:5000/linkerd/controller:stable-9.8.7"
	if v, err := ServerVersion(ctx, w.state("").Kube, testNS); err != nil || v != "stable-9.8.7" {
		t.Errorf("from image: ServerVersion = %q, %v; want stable-9.8.7", v, err)
	}

	if v, err := ServerVersion(ctx, emptyWorld(t).state("").Kube, testNS); err == nil {
		t.Errorf("not installed: ServerVersion = %q, want an error", v)
	}
}

func TestImageTag(t *testing.T) {
	for in, want := range map[string]string{
		"cr.l5d.io/linkerd/controller:stable-2.11.1":      "stable-2.11.1",
		"localhost:5000/controller:v1":                    "v1",
		"localhost:5000/controller":                       "",
		"controller@sha256:abcd":                          "",
		"cr.l5d.io/linkerd/controller:edge-1@sha256:abcd": "edge-1",
	} {
		if got := imageTag(in); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", in, got, want)
		}
	}
}
