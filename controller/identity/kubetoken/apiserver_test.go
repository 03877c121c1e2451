package kubetoken_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ctlidentity "github.com/linkerd-go/linkerd/controller/identity"
	"github.com/linkerd-go/linkerd/controller/identity/kubetoken"
	"github.com/linkerd-go/linkerd/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// TestValidatorAgainstAPIServer validates tokens issued by a real
// kube-apiserver through its TokenRequest API, as the proxies' projected
// tokens are.
func TestValidatorAgainstAPIServer(t *testing.T) {
	c := cluster.Start(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for _, sa := range []string{"web", "emoji", "web.v2"} {
		if _, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: sa},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating ServiceAccount %s: %v", sa, err)
		}
	}
	token := func(t *testing.T, sa string, audiences ...string) string {
		t.Helper()
		tr, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{
			Spec: authnv1.TokenRequestSpec{Audiences: audiences},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("TokenRequest for %s/%s: %v", ns, sa, err)
		}
		if tr.Status.Token == "" {
			t.Fatalf("TokenRequest for %s/%s: empty token", ns, sa)
		}
		return tr.Status.Token
	}
	id := func(sa string) string { return sa + "." + ns + ".serviceaccount.identity.linkerd.cluster.local" }
	garbageJWT := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"system:serviceaccount:`+ns+`:web","aud":["identity.l5d.io"]}`)) + ".c2lnbmF0dXJl"

	tests := []struct {
		name      string
		token     string
		audiences []string // Validator.Audiences
		want      string   // identity, or "" for a rejection
	}{
		{name: "identity audience", token: token(t, "web", kubetoken.Audience), want: id("web")},
		{name: "trailing newline", token: token(t, "web", kubetoken.Audience) + "\n", want: id("web")},
		{name: "other service account", token: token(t, "emoji", kubetoken.Audience), want: id("emoji")},
		{name: "several audiences", token: token(t, "web", "vault", kubetoken.Audience), want: id("web")},
		{name: "custom validator audience", token: token(t, "web", "custom"), audiences: []string{"custom"}, want: id("web")},
		{name: "other audience", token: token(t, "web", "vault")},
		{name: "API server audience", token: token(t, "web")},
		{name: "identity token for another audience", token: token(t, "web", kubetoken.Audience), audiences: []string{"custom"}},
		{name: "garbage", token: "not-a-token"},
		{name: "unsigned JWT", token: garbageJWT},
		{name: "service account name not a DNS label", token: token(t, "web.v2", kubetoken.Audience)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &kubetoken.Validator{Client: c.Client, ControllerNamespace: "linkerd", TrustDomain: "cluster.local", Audiences: tt.audiences}
			got, err := v.Validate(ctx, []byte(tt.token))
			if tt.want == "" {
				if !errors.Is(err, ctlidentity.ErrTokenRejected) {
					t.Fatalf("Validate = %q, %v; want an error wrapping ErrTokenRejected", got, err)
				}
				t.Logf("rejected: %v", err)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Validate = %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	t.Run("deleted service account", func(t *testing.T) {
		tok := []byte(token(t, "emoji", kubetoken.Audience))
		// The API server caches successful token reviews for 10s, keyed by
		// token and requested audiences. Check the token before the
		// deletion with another audience list than the one checked after
		// it, so the rejection is not hidden by that cache.
		before := &kubetoken.Validator{Client: c.Client, ControllerNamespace: "linkerd", TrustDomain: "cluster.local",
			Audiences: []string{kubetoken.Audience, "before-deletion"}}
		if got, err := before.Validate(ctx, tok); err != nil || got != id("emoji") {
			t.Fatalf("before deletion: Validate = %q, %v; want %q", got, err, id("emoji"))
		}
		if err := c.Client.CoreV1().ServiceAccounts(ns).Delete(ctx, "emoji", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		// The API server looks ServiceAccounts up in its informer cache,
		// which lags the deletion a little; a review answered from the
		// stale cache would be cached as a success for 10s. So probe with a
		// fresh audience list each time until the deletion is visible.
		deleted := time.Now()
		deadline := deleted.Add(10 * time.Second)
		for n := 0; ; n++ {
			probe := &kubetoken.Validator{Client: c.Client, ControllerNamespace: "linkerd", TrustDomain: "cluster.local",
				Audiences: []string{kubetoken.Audience, fmt.Sprintf("probe-%d", n)}}
			got, err := probe.Validate(ctx, tok)
			if errors.Is(err, ctlidentity.ErrTokenRejected) {
				t.Logf("rejected %v after the deletion: %v", time.Since(deleted).Round(time.Millisecond), err)
				break
			}
			if err != nil {
				t.Fatalf("Validate: %v, want a rejection", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("token of a deleted ServiceAccount still validates as %q after 10s", got)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The validator as the identity service configures it.
		v := &kubetoken.Validator{Client: c.Client, ControllerNamespace: "linkerd", TrustDomain: "cluster.local"}
		if got, err := v.Validate(ctx, tok); !errors.Is(err, ctlidentity.ErrTokenRejected) {
			t.Fatalf("token of a deleted ServiceAccount: Validate = %q, %v; want an error wrapping ErrTokenRejected", got, err)
		}
		// A token of the surviving service account is still good.
		if got, err := v.Validate(ctx, []byte(token(t, "web", kubetoken.Audience))); err != nil || got != id("web") {
			t.Fatalf("other service account after the deletion: Validate = %q, %v", got, err)
		}
	})
}
