package cmd

import (
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/controller/webhook/webhooktest"
)

// TestPolicyValidatorComponent: the webhook answers over TLS, denying an
// invalid Server with the field named.
func TestPolicyValidatorComponent(t *testing.T) {
	cert := webhooktest.WriteServingCert(t, t.TempDir(), "policy-validator-test")
	o := &policyValidatorOptions{}
	parseFlags(t, o.addFlags, "-addr=127.0.0.1:0", "-admin-addr=127.0.0.1:0", "-tls-cert="+cert.CertFile, "-tls-key="+cert.KeyFile)
	c, err := newPolicyValidatorComponent(o, quiet)
	if err != nil {
		t.Fatal(err)
	}
	startComponent(t, c)
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
		"kind":{"group":"policy.linkerd.io","version":"v1beta1","kind":"Server"},
		"resource":{"group":"policy.linkerd.io","version":"v1beta1","resource":"servers"},
		"name":"web","namespace":"default","operation":"CREATE",
		"object":{"apiVersion":"policy.linkerd.io/v1beta1","kind":"Server","metadata":{"name":"web","namespace":"default"},
		"spec":{"podSelector":{},"port":70000}}}}`
	r := webhooktest.Admit(t, cert.Client(t), "https://"+c.lis.Addr().String()+"/", []byte(review))
	if r.UID != "u1" || r.Allowed || r.Result == nil || !strings.Contains(r.Result.Message, "spec.port") {
		t.Fatalf("response = %+v, want the Server denied naming spec.port", r)
	}
}
