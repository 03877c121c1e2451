package cmd

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/controller/webhook/webhooktest"
)

// TestSPValidatorComponent runs the subcommand's component: the webhook
// answers over TLS, denying an invalid ServiceProfile with the field named,
// and the admin server is up.
func TestSPValidatorComponent(t *testing.T) {
	cert := webhooktest.WriteServingCert(t, t.TempDir(), "sp-validator-test")
	o := &spValidatorOptions{}
	parseFlags(t, o.addFlags)
	if o.addr != ":8443" || o.adminAddr != ":9997" {
		t.Errorf("default addresses %s and %s, want :8443 and :9997", o.addr, o.adminAddr)
	}
	parseFlags(t, o.addFlags, "-addr=127.0.0.1:0", "-admin-addr=127.0.0.1:0", "-tls-cert="+cert.CertFile, "-tls-key="+cert.KeyFile)
	c, err := newSPValidatorComponent(o, quiet)
	if err != nil {
		t.Fatal(err)
	}
	startComponent(t, c)

	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
		"kind":{"group":"linkerd.io","version":"v1alpha2","kind":"ServiceProfile"},
		"resource":{"group":"linkerd.io","version":"v1alpha2","resource":"serviceprofiles"},
		"name":"web","namespace":"default","operation":"CREATE",
		"object":{"apiVersion":"linkerd.io/v1alpha2","kind":"ServiceProfile","metadata":{"name":"web","namespace":"default"},
		"spec":{"routes":[{"name":"r","condition":{"method":"GET"},"timeout":"5"}]}}}}`
	r := webhooktest.Admit(t, cert.Client(t), "https://"+c.lis.Addr().String()+"/", []byte(review))
	if r.UID != "u1" || r.Allowed || r.Result == nil {
		t.Fatalf("response = %+v, want the profile denied", r)
	}
	for _, want := range []string{`metadata.name: "web" is not fully qualified`, `spec.routes[0].timeout: time: missing unit in duration "5"`} {
		if !strings.Contains(r.Result.Message, want) {
			t.Errorf("message %q does not contain %q", r.Result.Message, want)
		}
	}

	admin := "http://" + c.adminLis.Addr().String()
	waitReady(t, admin)
	if code, _ := httpGet(t, admin+"/live"); code != http.StatusOK {
		t.Errorf("/live = %d", code)
	}
}

func TestSPValidatorBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sp-validator", "-tls-cert=/nonexistent/tls.crt", "-tls-key=/nonexistent/tls.key"}, "webhook certificate"},
		{[]string{"sp-validator", "-no-such-flag"}, "flag provided but not defined"},
		{[]string{"sp-validator", "extra"}, "unexpected arguments"},
	} {
		var stderr bytes.Buffer
		code := Execute(context.Background(), tc.args, Env{Stdout: io.Discard, Stderr: &stderr})
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
