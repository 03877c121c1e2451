package spvalidator

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/controller/webhook"
	"github.com/linkerd-go/linkerd/controller/webhook/webhooktest"
)

// startServer serves the validator over TLS on 127.0.0.1 until the test
// ends, and returns its URL and a client trusting it.
func startServer(t *testing.T) (string, *http.Client) {
	t.Helper()
	cert := webhooktest.WriteServingCert(t, t.TempDir(), "linkerd-sp-validator.linkerd.svc")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	certs, err := webhook.NewCertLoader(cert.CertFile, cert.KeyFile, log)
	if err != nil {
		t.Fatal(err)
	}
	addr := webhooktest.Serve(t, func(ctx context.Context, lis net.Listener) error {
		return New(log).Serve(ctx, lis, certs.TLSConfig())
	})
	return "https://" + addr, cert.Client(t)
}

// review builds an AdmissionReview of a ServiceProfile given as YAML.
func review(t *testing.T, op admissionv1.Operation, resource metav1.GroupVersionResource, doc string) []byte {
	t.Helper()
	obj, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return webhooktest.Review(t, &admissionv1.AdmissionRequest{
		UID:       types.UID("uid-" + string(op)),
		Kind:      metav1.GroupVersionKind{Group: "linkerd.io", Version: "v1alpha2", Kind: "ServiceProfile"},
		Resource:  resource,
		Name:      "web.emojivoto.svc.cluster.local",
		Namespace: "emojivoto",
		Operation: op,
		Object:    runtime.RawExtension{Raw: obj},
	})
}

var spResource = metav1.GroupVersionResource{Group: "linkerd.io", Version: "v1alpha2", Resource: "serviceprofiles"}

const goodProfile = `apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web.emojivoto.svc.cluster.local, namespace: emojivoto}
spec:
  routes:
  - name: GET /api/list
    condition: {method: GET, pathRegex: /api/list}
    responseClasses: [{condition: {status: {min: 500, max: 599}}, isFailure: true}]
    timeout: 1s
`

const badProfile = `apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web.emojivoto.svc.cluster.local, namespace: emojivoto}
spec:
  routes:
  - name: GET /api/list
    condition: {method: GET}
  - name: vote
    condition: {pathRegex: '/api/vote/(.*'}
`

func TestServeReviews(t *testing.T) {
	url, client := startServer(t)
	other := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	for _, tc := range []struct {
		name     string
		op       admissionv1.Operation
		resource metav1.GroupVersionResource
		doc      string
		allowed  bool
		message  string
	}{
		{"valid profile created", admissionv1.Create, spResource, goodProfile, true, ""},
		{"valid profile updated", admissionv1.Update, spResource, goodProfile, true, ""},
		{"invalid profile created", admissionv1.Create, spResource, badProfile, false,
			`ServiceProfile "web.emojivoto.svc.cluster.local" is invalid: spec.routes[1].condition.pathRegex: error parsing regexp: missing closing ): ` + "`/api/vote/(.*`"},
		{"invalid profile updated", admissionv1.Update, spResource, badProfile, false, "spec.routes[1].condition.pathRegex"},
		{"unknown field", admissionv1.Create, spResource, strings.Replace(goodProfile, "timeout: 1s", "timeout: 1s\n    retries: 3", 1), false,
			"spec.routes[0].retries: unknown field"},
		{"invalid profile deleted", admissionv1.Delete, spResource, badProfile, true, ""},
		{"another resource", admissionv1.Create, other, badProfile, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, raw := webhooktest.Post(t, client, url+"/", review(t, tc.op, tc.resource, tc.doc))
			if code != http.StatusOK {
				t.Fatalf("HTTP %d: %s", code, raw)
			}
			resp := out.Response
			if resp.UID != types.UID("uid-"+string(tc.op)) {
				t.Errorf("response UID %q, want the request's", resp.UID)
			}
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v: %s", resp.Allowed, tc.allowed, raw)
			}
			if tc.allowed {
				if resp.Result != nil && resp.Result.Message != "" {
					t.Errorf("allowed with a message: %s", raw)
				}
				return
			}
			if resp.Result == nil || resp.Result.Code != http.StatusUnprocessableEntity || resp.Result.Reason != metav1.StatusReasonInvalid {
				t.Errorf("denial result %+v, want 422 Invalid", resp.Result)
			}
			if resp.Result != nil && !strings.Contains(resp.Result.Message, tc.message) {
				t.Errorf("message %q does not contain %q", resp.Result.Message, tc.message)
			}
		})
	}
}

func TestServeBadRequests(t *testing.T) {
	url, client := startServer(t)
	for _, tc := range []struct {
		name, path string
		body       string
		want       int
	}{
		{"not JSON", "/", "{", http.StatusBadRequest},
		{"no request", "/", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest},
		{"other path", "/inject", `{}`, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, raw := webhooktest.Post(t, client, url+tc.path, []byte(tc.body)); code != tc.want {
				t.Errorf("HTTP %d (%s), want %d", code, raw, tc.want)
			}
		})
	}
	resp, err := client.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: HTTP %d, want 405", resp.StatusCode)
	}

	// A body that is not a ServiceProfile at all is denied, not a 500.
	body := review(t, admissionv1.Create, spResource, "[1, 2]")
	code, out, raw := webhooktest.Post(t, client, url+"/", body)
	if code != http.StatusOK || out.Response.Allowed || !strings.Contains(out.Response.Result.Message, "decoding the ServiceProfile") {
		t.Errorf("a list as the object: HTTP %d: %s", code, raw)
	}
}
