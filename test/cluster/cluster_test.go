package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) { Main(m) }

func TestLogBuffer(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		writes    []string
		markAfter int // mark taken after this many writes
		limit     int
		want      string
		truncated bool
	}{
		{name: "all", max: 100, writes: []string{"ab", "cd"}, markAfter: 0, limit: -1, want: "abcd"},
		{name: "since mark", max: 100, writes: []string{"ab", "cd", "ef"}, markAfter: 1, limit: -1, want: "cdef"},
		{name: "nothing new", max: 100, writes: []string{"ab"}, markAfter: 1, limit: -1, want: ""},
		{name: "limit keeps newest", max: 100, writes: []string{"abcdef"}, markAfter: 0, limit: 2, want: "ef", truncated: true},
		{name: "ring drops oldest", max: 4, writes: []string{"abc", "def"}, markAfter: 0, limit: -1, want: "cdef", truncated: true},
		{name: "huge write", max: 3, writes: []string{"abcdefg"}, markAfter: 0, limit: -1, want: "efg", truncated: true},
		{name: "mark inside ring", max: 4, writes: []string{"abc", "def", "g"}, markAfter: 2, limit: -1, want: "g"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newLogBuffer(tt.max)
			var mark int64
			for i, w := range tt.writes {
				if i == tt.markAfter {
					mark = b.Mark()
				}
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if tt.markAfter == len(tt.writes) {
				mark = b.Mark()
			}
			got, truncated := b.Since(mark, tt.limit)
			if string(got) != tt.want || truncated != tt.truncated {
				t.Fatalf("Since = %q, %v; want %q, %v", got, truncated, tt.want, tt.truncated)
			}
		})
	}
}

func TestNamespaceName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	tests := []struct{ in, prefix string }{
		{"TestFoo", "testfoo-"},
		{"TestFoo/sub_case#01", "testfoo-sub-case-01-"},
		{"///", "test-"},
		{strings.Repeat("x", 100), strings.Repeat("x", 50) + "-"},
		{"Test/-trailing-/", "test-trailing-"},
	}
	for _, tt := range tests {
		got := namespaceName(tt.in)
		if !strings.HasPrefix(got, tt.prefix) || len(got) != len(tt.prefix)+6 || len(got) > 63 || !valid.MatchString(got) {
			t.Errorf("namespaceName(%q) = %q, want %q + 6 random characters, a DNS label", tt.in, got, tt.prefix)
		}
	}
	if a, b := namespaceName("T"), namespaceName("T"); a == b {
		t.Errorf("two namespaces for the same test share the name %q", a)
	}
}

func TestWritePKI(t *testing.T) {
	p, err := writePKI(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.CAPEM) {
		t.Fatal("CA PEM does not parse")
	}
	serving, err := tls.LoadX509KeyPair(p.ServingCert, p.ServingKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "localhost", "::1"} {
		if _, err := serving.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	admin, err := tls.X509KeyPair(p.AdminCertPEM, p.AdminKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin certificate: %v", err)
	}
	if org := admin.Leaf.Subject.Organization; len(org) != 1 || org[0] != "system:masters" {
		t.Errorf("admin organization = %q, want [system:masters]", org)
	}
	if _, err := admin.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("admin certificate is valid for servers")
	}
	pubPEM, err := os.ReadFile(p.SAPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pubPEM)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("service-account public key PEM: %q", pubPEM)
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		t.Errorf("service-account public key: %v", err)
	}
}

// recordingTB captures how Start gives up, without ending the real test.
type recordingTB struct {
	testing.TB
	mu    sync.Mutex
	skip  string
	fatal string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skip = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func TestStartWithoutBinaries(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv(BinDirEnv, t.TempDir())
			t.Setenv("CI", ci)
			r := &recordingTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Start(r)
			}()
			<-done
			msg := r.skip
			if ci == "true" {
				msg = r.fatal
				if r.skip != "" {
					t.Errorf("skipped under CI=true: %s", r.skip)
				}
			} else if r.fatal != "" {
				t.Errorf("failed instead of skipping: %s", r.fatal)
			}
			if !strings.Contains(msg, "hack/build-k8s.sh") {
				t.Errorf("message %q does not name hack/build-k8s.sh", msg)
			}
		})
	}
}

// TestCluster starts the real thing and checks what tests rely on.
func TestCluster(t *testing.T) {
	c := Start(t)
	if again := Start(t); again != c {
		t.Fatal("second Start returned another cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	v, err := c.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != Version {
		t.Errorf("server version %s, want %s", v.GitVersion, Version)
	}

	// The kubeconfig file works like RESTConfig.
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != c.Server {
		t.Errorf("kubeconfig server %s, want %s", cfg.Host, c.Server)
	}

	ns := c.Namespace(t)
	if _, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("default ServiceAccount: %v", err)
	}

	// Service-account tokens are issued and reviewed (the signing key and
	// issuer flags are right).
	tr, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "default", &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{Audiences: []string{"test-audience"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	review, err := c.Client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: tr.Status.Token, Audiences: []string{"test-audience"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "system:serviceaccount:" + ns + ":default"; !review.Status.Authenticated || review.Status.User.Username != want {
		t.Errorf("token review: %+v, want %s authenticated", review.Status, want)
	}

	// Services get cluster IPs from ServiceCIDR.
	svc, err := c.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(svc.Spec.ClusterIP, "10.96.") {
		t.Errorf("cluster IP %q not from %s", svc.Spec.ClusterIP, ServiceCIDR)
	}

	t.Run("kubectl", func(t *testing.T) {
		c.Apply(t, fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: cm, namespace: %s}
data: {k: v}
`, ns))
		if got := c.Kubectl(t, "-n", ns, "get", "configmap", "cm", "-o", "jsonpath={.data.k}"); got != "v" {
			t.Errorf("kubectl get = %q, want v", got)
		}
	})
}
