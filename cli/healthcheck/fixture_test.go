package healthcheck

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/pki"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

// testNow is the clock of every fixture: certificates' dates are relative to it.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	testVersion = "test-1.0.0"
	testNS      = "linkerd"
	appNS       = "emojivoto"
)

// world is a cluster for the fake clientset: a healthy control plane and
// one meshed pod, which tests alter before building the State.
type world struct {
	t          *testing.T
	objs       []runtime.Object
	resources  []*metav1.APIResourceList
	k8sVersion string
	// denied lists "verb resource.group" pairs SelfSubjectAccessReviews refuse.
	denied     map[string]bool
	serverTime func(context.Context) (time.Time, error)
	kubectl    func(context.Context) (string, error)

	anchor, issuer, webhookCA *pki.CA
	anchorsPEM                string
}

func validity(from, to time.Duration) pki.Validity {
	return pki.Validity{NotBefore: testNow.Add(from), NotAfter: testNow.Add(to)}
}

const day = 24 * time.Hour

// emptyWorld is a cluster without Linkerd.
func emptyWorld(t *testing.T) *world {
	t.Helper()
	return &world{
		t:          t,
		k8sVersion: "v1.36.3",
		denied:     map[string]bool{},
		objs: []runtime.Object{
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
			&corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
				Spec:       corev1.NodeSpec{PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24"}},
				Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
					{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(testNow.Add(-3 * time.Minute))},
				}},
			},
		},
	}
}

// healthyWorld is a cluster with a healthy control plane in "linkerd" and
// a meshed pod "web" in "emojivoto".
func healthyWorld(t *testing.T) *world {
	t.Helper()
	w := emptyWorld(t)
	var err error
	w.anchor, err = pki.NewCAWithValidity("root.linkerd.cluster.local", validity(-day, 3650*day))
	if err != nil {
		t.Fatal(err)
	}
	w.issuer, err = w.anchor.NewIssuerWithValidity("identity.linkerd.cluster.local", validity(-day, 365*day))
	if err != nil {
		t.Fatal(err)
	}
	w.webhookCA, err = pki.NewCAWithValidity("webhook.linkerd.cluster.local", validity(-day, 365*day))
	if err != nil {
		t.Fatal(err)
	}
	w.anchorsPEM = string(pki.EncodeCertificatesPEM(w.anchor.Cert))

	values := map[string]any{
		"linkerdVersion":          testVersion,
		"clusterNetworks":         "10.0.0.0/8,fd00::/8",
		"identityTrustAnchorsPEM": w.anchorsPEM,
		"identity":                map[string]any{"issuer": map[string]any{"scheme": identity.IssuerSchemeLinkerd}},
	}
	valuesYAML, err := yaml.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{k8s.ControlPlaneNSLabel: testNS}
	w.add(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS, Labels: labels}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNS}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: k8s.ConfigMapName, Namespace: testNS}, Data: map[string]string{k8s.ConfigValuesKey: string(valuesYAML)}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: k8s.TrustRootsConfigMapName, Namespace: testNS}, Data: map[string]string{k8s.TrustRootsKey: w.anchorsPEM}},
	)
	w.setIssuer(w.issuer)
	for _, c := range components {
		w.add(
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: c.ServiceAccount, Namespace: testNS}},
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: k8s.ClusterRoleName(testNS, c.Component)}},
			&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: k8s.ClusterRoleName(testNS, c.Component)}},
			&appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: c.Deployment, Namespace: testNS},
				Spec: appsv1.DeploymentSpec{
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{k8s.ControllerComponentLabel: c.Component}},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{k8s.ControllerComponentLabel: c.Component}},
						Spec: corev1.PodSpec{Containers: []corev1.Container{
							{Name: k8s.ProxyContainerName, Image: "cr.l5d.io/linkerd-go/proxy:" + testVersion},
							{Name: c.Component, Image: "cr.l5d.io/linkerd-go/controller:" + testVersion},
						}},
					},
				},
			},
			w.controlPlanePod(c),
		)
	}
	for _, wh := range webhooks {
		w.setWebhookCert(wh, w.webhookCA, validity(-day, 365*day), wh.Service+"."+testNS+".svc")
		bundle := pki.EncodeCertificatesPEM(w.webhookCA.Cert)
		// No rules: a real API server never calls these webhooks.
		cc := admissionv1.WebhookClientConfig{CABundle: bundle, Service: &admissionv1.ServiceReference{Name: wh.Service, Namespace: testNS}}
		none := admissionv1.SideEffectClassNone
		reviews := []string{"v1"}
		if wh.Mutating {
			w.add(&admissionv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: wh.Config}, Webhooks: []admissionv1.MutatingWebhook{
				{Name: wh.Service + ".linkerd.io", ClientConfig: cc, SideEffects: &none, AdmissionReviewVersions: reviews},
			}})
		} else {
			w.add(&admissionv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: wh.Config}, Webhooks: []admissionv1.ValidatingWebhook{
				{Name: wh.Service + ".linkerd.io", ClientConfig: cc, SideEffects: &none, AdmissionReviewVersions: reviews},
			}})
		}
	}
	w.resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "pods"}, {Name: "services"}}},
		{GroupVersion: "linkerd.io/v1alpha2", APIResources: []metav1.APIResource{{Name: "serviceprofiles"}}},
		{GroupVersion: "policy.linkerd.io/v1beta3", APIResources: []metav1.APIResource{
			{Name: "authorizationpolicies"}, {Name: "httproutes"}, {Name: "meshtlsauthentications"},
			{Name: "networkauthentications"}, {Name: "serverauthorizations"}, {Name: "servers"},
		}},
		{GroupVersion: "split.smi-spec.io/v1alpha1", APIResources: []metav1.APIResource{{Name: "trafficsplits"}}},
	}

	web := w.meshedPod(appNS, "web-7f9c6d-xyz12", map[string]string{"app": "web"})
	web.Spec.Containers[1].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	w.add(web, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web-svc", Namespace: appNS},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	})
	return w
}

func (w *world) add(objs ...runtime.Object) { w.objs = append(w.objs, objs...) }

// remove drops the object of kind T named name.
func remove[T runtime.Object](w *world, name string) {
	w.t.Helper()
	for i, o := range w.objs {
		if _, ok := o.(T); ok && o.(metav1.Object).GetName() == name {
			w.objs = append(w.objs[:i], w.objs[i+1:]...)
			return
		}
	}
	w.t.Fatalf("no %T named %s to remove", *new(T), name)
}

// get returns the object of kind T named name, to alter it.
func get[T runtime.Object](w *world, name string) T {
	w.t.Helper()
	for _, o := range w.objs {
		if v, ok := o.(T); ok && o.(metav1.Object).GetName() == name {
			return v
		}
	}
	w.t.Fatalf("no %T named %s", *new(T), name)
	return *new(T)
}

// replace removes any object of o's kind and name and adds o.
func (w *world) replace(o runtime.Object) {
	name := o.(metav1.Object).GetName()
	kind := fmt.Sprintf("%T", o)
	for i, old := range w.objs {
		if fmt.Sprintf("%T", old) == kind && old.(metav1.Object).GetName() == name {
			w.objs[i] = o
			return
		}
	}
	w.objs = append(w.objs, o)
}

// meshedPod is a running, ready pod with an app container and a proxy.
func (w *world) meshedPod(ns, name string, labels map[string]string) *corev1.Pod {
	l := map[string]string{k8s.ControllerNSLabel: testNS}
	for k, v := range labels {
		l[k] = v
	}
	sum := sha256.Sum256([]byte(w.anchorsPEM))
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, Labels: l,
			Annotations: map[string]string{
				k8s.ProxyVersionAnnotation:    testVersion,
				k8s.TrustRootSHA256Annotation: hex.EncodeToString(sum[:]),
			},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: k8s.ProxyContainerName, Image: "cr.l5d.io/linkerd-go/proxy:" + testVersion},
			{Name: "app", Image: "registry.test/app:v1"},
		}},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: k8s.ProxyContainerName, Ready: true},
				{Name: "app", Ready: true},
			},
		},
	}
}

// controlPlanePod is a ready pod of component c; the destination's runs the
// policy controller's containers too.
func (w *world) controlPlanePod(c component) *corev1.Pod {
	pod := w.meshedPod(testNS, c.Deployment+"-5d8f7c-abcde", map[string]string{k8s.ControllerComponentLabel: c.Component})
	if c.Deployment == k8s.DestinationDeploymentName {
		for _, name := range policyContainers {
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: name, Image: "cr.l5d.io/linkerd-go/controller:" + testVersion})
			pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{Name: name, Ready: true})
		}
	}
	return pod
}

func (w *world) setIssuer(issuer *pki.CA) {
	w.t.Helper()
	key, err := pki.EncodePrivateKeyPEM(issuer.Key)
	if err != nil {
		w.t.Fatal(err)
	}
	w.replace(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: k8s.IssuerSecretName, Namespace: testNS},
		Data:       map[string][]byte{linkerdCertKey: pki.EncodeCertificatesPEM(issuer.Chain()...), linkerdKeyKey: key},
	})
}

// setWebhookCert issues the webhook's serving certificate from ca.
func (w *world) setWebhookCert(wh webhook, ca *pki.CA, v pki.Validity, name string) {
	w.t.Helper()
	key, err := pki.GenerateKey()
	if err != nil {
		w.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    v.NotBefore,
		NotAfter:     v.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		w.t.Fatal(err)
	}
	keyPEM, err := pki.EncodePrivateKeyPEM(key)
	if err != nil {
		w.t.Fatal(err)
	}
	w.replace(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: wh.Secret, Namespace: testNS},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			tlsCertKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			tlsKeyKey:  keyPEM,
		},
	})
}

// rsaIssuer is an issuer with an RSA key, signed by the anchor.
func (w *world) rsaIssuerSecret() {
	w.t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		w.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: "identity.linkerd.cluster.local"},
		NotBefore:             testNow.Add(-day),
		NotAfter:              testNow.Add(365 * day),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, w.anchor.Cert, &key.PublicKey, w.anchor.Key)
	if err != nil {
		w.t.Fatal(err)
	}
	w.replace(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: k8s.IssuerSecretName, Namespace: testNS},
		Data: map[string][]byte{
			linkerdCertKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			linkerdKeyKey:  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		},
	})
}

// state builds the fake clientset and a State on it.
func (w *world) state(dataNS string) *State {
	cs := fake.NewClientset(w.objs...)
	cs.Resources = w.resources
	cs.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: w.k8sVersion}
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		review := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		ra := review.Spec.ResourceAttributes
		key := ra.Verb + " " + ra.Resource
		if ra.Group != "" {
			key += "." + ra.Group
		}
		review.Status.Allowed = !w.denied[key]
		if !review.Status.Allowed {
			review.Status.Reason = "RBAC: not allowed"
		}
		return true, review, nil
	})
	return &State{
		ControlPlaneNamespace: testNS,
		DataPlaneNamespace:    dataNS,
		CLIVersion:            testVersion,
		NewClient:             nil,
		Kube:                  cs,
		ServerTime:            w.serverTime,
		KubectlVersion:        w.kubectl,
		Now:                   func() time.Time { return testNow },
	}
}
