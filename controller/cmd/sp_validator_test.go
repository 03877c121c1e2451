package cmd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSPValidatorComponent runs the subcommand's component: the webhook
// answers over TLS, denying an invalid ServiceProfile with the field named,
// and the admin server is up.
func TestSPValidatorComponent(t *testing.T) {
	certFile, keyFile, pool := selfSignedServing(t, t.TempDir())
	fs := flag.NewFlagSet("sp-validator", flag.ContinueOnError)
	o := &spValidatorOptions{}
	o.addFlags(fs)
	if o.addr != ":8443" || o.adminAddr != ":9997" {
		t.Errorf("default addresses %s and %s, want :8443 and :9997", o.addr, o.adminAddr)
	}
	if err := fs.Parse([]string{"-addr=127.0.0.1:0", "-admin-addr=127.0.0.1:0", "-tls-cert=" + certFile, "-tls-key=" + keyFile}); err != nil {
		t.Fatal(err)
	}
	log, err := o.log.logger(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newSPValidatorComponent(o, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("run did not return within 15s of cancellation")
		}
	})

	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
		"kind":{"group":"linkerd.io","version":"v1alpha2","kind":"ServiceProfile"},
		"resource":{"group":"linkerd.io","version":"v1alpha2","resource":"serviceprofiles"},
		"name":"web","namespace":"default","operation":"CREATE",
		"object":{"apiVersion":"linkerd.io/v1alpha2","kind":"ServiceProfile","metadata":{"name":"web","namespace":"default"},
		"spec":{"routes":[{"name":"r","condition":{"method":"GET"},"timeout":"5"}]}}}}`
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	resp, err := client.Post("https://"+c.lis.Addr().String()+"/", "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Response struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
			Status  struct {
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	r := out.Response
	if r.UID != "u1" || r.Allowed {
		t.Fatalf("response = %+v, want the profile denied", r)
	}
	for _, want := range []string{`metadata.name: "web" is not fully qualified`, `spec.routes[0].timeout: time: missing unit in duration "5"`} {
		if !strings.Contains(r.Status.Message, want) {
			t.Errorf("message %q does not contain %q", r.Status.Message, want)
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
