package cmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/linkerd-go/linkerd/internal/golden"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/pki"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// TestCertificateText renders a fixed certificate (the install tests'
// issuer) as `linkerd identity` prints it.
func TestCertificateText(t *testing.T) {
	pemBytes, err := os.ReadFile("testdata/install_issuer.crt")
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.DecodeCertificatePEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "identity_certificate", certificateText(c))
}

// TestPrintIdentities fetches certificates from TLS servers that answer
// as a proxy's inbound does (the identity as SNI, a client certificate
// optional): the one the server holds is printed, per pod; a pod whose
// proxy does not answer TLS is an error naming it.
func TestPrintIdentities(t *testing.T) {
	ca, err := pki.NewCA("root.linkerd.cluster.local", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(id string) string {
		key, err := pki.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		der, err := pki.MakeCSR(key, id)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := ca.SignCSR(csr, time.Hour, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, ClientAuth: tls.VerifyClientCertIfGiven,
			Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}},
			GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
				if h.ServerName != id {
					t.Errorf("SNI %q, want %q", h.ServerName, id)
				}
				return nil, nil
			}}
		l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		return l.Addr().String()
	}
	target := func(pod, id, addr string) identityTarget {
		return identityTarget{pod: pod, identity: id, dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}}
	}
	webID, votingID := "web.demo.serviceaccount.identity.linkerd.cluster.local", "voting.demo.serviceaccount.identity.linkerd.cluster.local"
	var out strings.Builder
	err = printIdentities(context.Background(), &out, []identityTarget{
		target("web", webID, serve(webID)), target("voting", votingID, serve(votingID))})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nPOD web (1 of 2)\n\nCertificate:\n", "\nPOD voting (2 of 2)\n\nCertificate:\n",
		"DNS:" + webID, "DNS:" + votingID, "Issuer: CN=root.linkerd.cluster.local", "ECDSA (P-256, 256 bit)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	// A plain TCP server that closes at once: no TLS.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	err = printIdentities(context.Background(), &out, []identityTarget{target("plain", webID, l.Addr().String())})
	if err == nil || !strings.HasPrefix(err.Error(), "pod plain: TLS handshake with its proxy") {
		t.Errorf("plain server: %v", err)
	}
}

// TestProxyIdentity expands the proxy container's identity variable as the
// kubelet does.
func TestProxyIdentity(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "web-1"},
		Spec: corev1.PodSpec{ServiceAccountName: "web", Containers: []corev1.Container{{Name: "app"}, {Name: k8s.ProxyContainerName, Env: []corev1.EnvVar{
			{Name: "_pod_ns", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "_pod_sa", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.serviceAccountName"}}},
			{Name: "_l5d_ns", Value: "linkerd"},
			{Name: "_l5d_trustdomain", Value: "cluster.local"},
			{Name: proxyenv.IdentityLocalName, Value: "$(_pod_sa).$(_pod_ns).serviceaccount.identity.$(_l5d_ns).$(_l5d_trustdomain)"},
		}}}}}
	if got, want := proxyIdentity(pod), "web.demo.serviceaccount.identity.linkerd.cluster.local"; got != want {
		t.Errorf("identity %q, want %q", got, want)
	}
	pod.Spec.Containers = pod.Spec.Containers[:1]
	if got := proxyIdentity(pod); got != "" {
		t.Errorf("unmeshed pod: identity %q", got)
	}
}

// TestIdentityPods resolves names and selectors in a fake cluster.
func TestIdentityPods(t *testing.T) {
	mk := func(name, app string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name, Labels: map[string]string{"app": app}}}
	}
	kube := fake.NewClientset(mk("web-1", "web"), mk("web-2", "web"), mk("voting-1", "voting"))
	sel, _ := labels.Parse("app=web")
	pods, err := kubeIdentityPods(context.Background(), kube, "demo", nil, sel)
	if err != nil || len(pods) != 2 {
		t.Errorf("app=web: %d pods, %v", len(pods), err)
	}
	sel, _ = labels.Parse("app=nothere")
	if _, err := kubeIdentityPods(context.Background(), kube, "demo", nil, sel); err == nil || err.Error() != "no pods in namespace demo match app=nothere" {
		t.Errorf("app=nothere: %v", err)
	}
	if _, err := kubeIdentityPods(context.Background(), kube, "demo", []string{"voting-1", "gone"}, labels.Everything()); err == nil || err.Error() != "pod gone not found in namespace demo" {
		t.Errorf("gone: %v", err)
	}
}

// TestIdentityErrors: bad input is one line and exit 1.
func TestIdentityErrors(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	state := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"identity"}, "name one or more pods, or select them with --selector"},
		{[]string{"identity", "web", "-l", "app=web"}, "not both"},
		{[]string{"identity", "-l", "app in (", "--state-dir", state}, "--selector:"},
		{[]string{"identity", "web", "--state-dir", state}, "no local mesh up at " + state},
	} {
		code, stdout, stderr := runCLI(t, tc.args...)
		if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want one line with %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
}
