package cmd

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/controller/webhook/webhooktest"
)

// TestProxyInjectorComponent runs the subcommand's component against an
// unreachable API server: the webhook answers over TLS and admits pods
// unchanged, with a warning.
func TestProxyInjectorComponent(t *testing.T) {
	dir := t.TempDir()
	cert := webhooktest.WriteServingCert(t, dir, "proxy-injector-test")
	kubeconfig := filepath.Join(dir, "kubeconfig")
	mustWrite(t, kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`))
	o := &proxyInjectorOptions{}
	parseFlags(t, o.addFlags)
	if o.addr != ":8443" || o.adminAddr != ":9995" || o.controllerNS != "linkerd" {
		t.Errorf("defaults -addr=%s -admin-addr=%s -controller-namespace=%s, want :8443, :9995 and linkerd", o.addr, o.adminAddr, o.controllerNS)
	}
	parseFlags(t, o.addFlags, "-addr=127.0.0.1:0", "-admin-addr=127.0.0.1:0", "-tls-cert="+cert.CertFile, "-tls-key="+cert.KeyFile,
		"-kubeconfig="+kubeconfig, "-controller-namespace=mesh")
	c, err := newProxyInjectorComponent(o, quiet)
	if err != nil {
		t.Fatal(err)
	}
	startComponent(t, c)

	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
		"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
		"namespace":"default","operation":"CREATE","object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"x"}]}}}}`
	r := webhooktest.Admit(t, cert.Client(t), "https://"+c.lis.Addr().String()+"/", []byte(review))
	if r.UID != "u1" || !r.Allowed || len(r.Patch) != 0 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "not injected") {
		t.Errorf("response = %+v, want the pod admitted unchanged with a warning", r)
	}

	admin := "http://" + c.adminLis.Addr().String()
	waitReady(t, admin)
	if code, body := httpGet(t, admin+"/metrics"); code != http.StatusOK || !strings.Contains(body, `proxy_inject_admission_responses_total{namespace="default"`) {
		t.Errorf("/metrics = %d, want the injector's metrics:\n%s", code, body)
	}
}

func TestProxyInjectorBadCertificate(t *testing.T) {
	var stderr bytes.Buffer
	code := Execute(context.Background(), []string{"proxy-injector", "-tls-cert=/nonexistent/tls.crt", "-tls-key=/nonexistent/tls.key"},
		Env{Stdout: io.Discard, Stderr: &stderr})
	if code != 2 || !strings.Contains(stderr.String(), "webhook certificate") {
		t.Errorf("exit %d, stderr %q; want 2 and a certificate error", code, stderr.String())
	}
}
