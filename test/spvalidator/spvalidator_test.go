// Package spvalidator checks the ServiceProfile validator against a real
// kube-apiserver (test/cluster): the CRDs of `linkerd install --crds`, the
// ValidatingWebhookConfiguration of `linkerd install` pointed at a
// validator running in the test (URL https://127.0.0.1:PORT), and kubectl
// applying good and bad ServiceProfiles.
package spvalidator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/cli/cmd"
	ctlspv "github.com/linkerd-go/linkerd/controller/spvalidator"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/pki"
	"github.com/linkerd-go/linkerd/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// linkerd runs the CLI against the cluster and returns its stdout.
func linkerd(t *testing.T, c *cluster.Cluster, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := cmd.Execute(ctx, append([]string{"--kubeconfig", c.Kubeconfig}, args...), cmd.Env{Stdout: &stdout, Stderr: &stderr}); code != 0 {
		t.Fatalf("linkerd %s: exit code %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String()
}

// kubectl runs kubectl with manifest on its standard input and returns
// its combined output and error.
func kubectl(c *cluster.Cluster, manifest string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k := exec.CommandContext(ctx, cluster.KubectlPath(), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	k.Stdin = strings.NewReader(manifest)
	out, err := k.CombinedOutput()
	return string(out), err
}

// servingTLS returns a CA (PEM) and a server configuration with a
// certificate it signed for 127.0.0.1.
func servingTLS(t *testing.T) ([]byte, *tls.Config) {
	t.Helper()
	ca, err := pki.NewCA("sp-validator-test-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pki.EncodeCertificatesPEM(ca.Cert), &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	}
}

// startValidator serves the validator on 127.0.0.1 until the test ends
// and returns its address and the CA that signed its certificate.
func startValidator(t *testing.T) (string, []byte) {
	t.Helper()
	caPEM, tlsConfig := servingTLS(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ctlspv.New(slog.New(slog.NewTextHandler(io.Discard, nil))).Serve(ctx, lis, tlsConfig)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("validator: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("validator did not stop")
		}
	})
	return lis.Addr().String(), caPEM
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// installedWebhook returns the ValidatingWebhookConfiguration `linkerd
// install` renders.
func installedWebhook(t *testing.T, c *cluster.Cluster) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	for _, doc := range docSeparator.Split(linkerd(t, c, "install", "--ignore-cluster"), -1) {
		if !strings.Contains(doc, "kind: ValidatingWebhookConfiguration") {
			continue
		}
		var vwc admissionregistrationv1.ValidatingWebhookConfiguration
		if err := yaml.UnmarshalStrict([]byte(doc), &vwc); err != nil {
			t.Fatalf("decoding the webhook configuration: %v\n%s", err, doc)
		}
		if vwc.Name == k8s.SPValidatorWebhookConfigName {
			return &vwc
		}
	}
	t.Fatalf("linkerd install renders no ValidatingWebhookConfiguration %s", k8s.SPValidatorWebhookConfigName)
	return nil
}

// profile is a ServiceProfile valid for the CRD schema; bad ones differ
// from it in what only the validator checks.
func profile(ns, name, routes string) string {
	return fmt.Sprintf(`apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: %s
  namespace: %s
spec:
  routes:
%s`, name, ns, routes)
}

const goodRoutes = `  - name: GET /api/list
    condition: {method: GET, pathRegex: /api/list}
    responseClasses:
    - condition: {status: {min: 500, max: 599}}
      isFailure: true
    timeout: 300ms
  - name: POST /api/vote
    condition:
      all: [{method: POST}, {pathRegex: '/api/vote/[^/]+'}]
`

// deniedBy is what the API server says when the validator denies a request.
const deniedBy = `admission webhook "` + ctlspv.WebhookName + `" denied the request`

func TestServiceProfileWebhook(t *testing.T) {
	c := cluster.Start(t)
	cluster.RequireKubectl(t)
	if out, err := kubectl(c, linkerd(t, c, "install", "--crds"), "apply", "-f", "-"); err != nil {
		t.Fatalf("applying the CRDs: %v\n%s", err, out)
	}
	if out, err := kubectl(c, "", "wait", "--for=condition=Established", "--timeout=60s", "crd/serviceprofiles.linkerd.io"); err != nil {
		t.Fatalf("waiting for the CRD: %v\n%s", err, out)
	}

	addr, caPEM := startValidator(t)
	vwc := installedWebhook(t, c)
	if len(vwc.Webhooks) != 1 || vwc.Webhooks[0].Name != ctlspv.WebhookName {
		t.Fatalf("webhooks %+v, want one named %s", vwc.Webhooks, ctlspv.WebhookName)
	}
	url := "https://" + addr + ctlspv.Path
	vwc.Webhooks[0].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the webhook configuration: %v", err)
	}
	t.Cleanup(func() {
		err := c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), vwc.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting the webhook configuration: %v", err)
		}
	})

	ns := c.Namespace(t)
	fqdn := "web." + ns + ".svc.cluster.local"

	// The API server picks the configuration up asynchronously: wait
	// until a bad profile is denied.
	probe := profile(ns, "probe", goodRoutes)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := kubectl(c, probe, "apply", "--dry-run=server", "-f", "-")
		if err != nil && strings.Contains(out, deniedBy) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook was not called within 30s: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	for _, bad := range []struct {
		name, doc, want string
	}{
		{"bad regex", profile(ns, fqdn, goodRoutes+`  - name: broken
    condition: {pathRegex: '/api/(v1'}
`), "spec.routes[2].condition.pathRegex: error parsing regexp: missing closing ): `/api/(v1`"},
		{"status range upside down", profile(ns, fqdn, `  - name: r
    condition: {method: GET}
    responseClasses: [{condition: {status: {min: 599, max: 500}}, isFailure: true}]
`), "spec.routes[0].responseClasses[0].condition.status: min 599 is above max 500"},
		{"name not fully qualified", profile(ns, "web", goodRoutes), `metadata.name: "web" is not fully qualified`},
		{"unknown field in a condition", profile(ns, fqdn, `  - name: r
    condition: {any: [{method: GET}, {methd: POST}]}
`), "spec.routes[0].condition.any[1].methd: unknown field"},
		{"lower-case method", profile(ns, fqdn, `  - name: r
    condition: {not: {method: get}}
`), `spec.routes[0].condition.not.method: "get" never matches`},
		{"2.11 v1alpha1 profile with a bad regex", strings.Replace(profile(ns, fqdn, `  - name: r
    condition: {pathRegex: '/(['}
`), "linkerd.io/v1alpha2", "linkerd.io/v1alpha1", 1), "spec.routes[0].condition.pathRegex: error parsing regexp"},
		{"negative weight", profile(ns, fqdn, goodRoutes) + `  dstOverrides:
  - {authority: web-v2.` + ns + `.svc.cluster.local:80, weight: "-1"}
`, "spec.dstOverrides[0].weight: must not be negative"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			out, err := kubectl(c, bad.doc, "apply", "-f", "-")
			if err == nil {
				t.Fatalf("accepted:\n%s", out)
			}
			if !strings.Contains(out, deniedBy) || !strings.Contains(out, bad.want) {
				t.Errorf("rejected, but not by the validator naming the field (want %q):\n%s", bad.want, out)
			}
			t.Logf("kubectl: %s", strings.TrimSpace(out))
		})
	}
	if out, _ := kubectl(c, "", "get", "serviceprofiles", "-n", ns, "-o", "name"); strings.TrimSpace(out) != "" {
		t.Fatalf("denied profiles were stored: %s", out)
	}

	// A good profile is created, and a bad update of it denied.
	good := profile(ns, fqdn, goodRoutes)
	if out, err := kubectl(c, good, "apply", "-f", "-"); err != nil || !strings.Contains(out, "created") {
		t.Fatalf("good profile: %v\n%s", err, out)
	}
	badUpdate := strings.Replace(good, "pathRegex: /api/list", "pathRegex: '/api/list['", 1)
	out, err := kubectl(c, badUpdate, "apply", "-f", "-")
	if err == nil || !strings.Contains(out, deniedBy) || !strings.Contains(out, "spec.routes[0].condition.pathRegex: error parsing regexp") {
		t.Errorf("bad update: %v\n%s", err, out)
	}
	stored, err := kubectl(c, "", "get", "serviceprofile", fqdn, "-n", ns, "-o", "jsonpath={.spec.routes[0].condition.pathRegex}")
	if err != nil || stored != "/api/list" {
		t.Errorf("stored pathRegex %q (%v), want /api/list", stored, err)
	}
	goodUpdate := strings.Replace(good, "timeout: 300ms", "timeout: 1s", 1)
	if out, err := kubectl(c, goodUpdate, "apply", "-f", "-"); err != nil || !strings.Contains(out, "configured") {
		t.Errorf("good update: %v\n%s", err, out)
	}

	// Namespaces labelled config.linkerd.io/admission-webhooks=disabled
	// are left alone (the chart's namespaceSelector).
	skipped := c.Namespace(t)
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"disabled"}}}`, k8s.AdmissionWebhooksLabel)
	if _, err := c.Client.CoreV1().Namespaces().Patch(ctx, skipped, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	unchecked := profile(skipped, "web", goodRoutes)
	deadline = time.Now().Add(30 * time.Second)
	for {
		out, err := kubectl(c, unchecked, "apply", "-f", "-")
		if err == nil {
			break
		}
		if !strings.Contains(out, deniedBy) || time.Now().After(deadline) {
			t.Fatalf("profile in a namespace with admission webhooks disabled: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond) // the API server has not seen the label yet
	}
}
