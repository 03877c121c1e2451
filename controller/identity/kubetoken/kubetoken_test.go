package kubetoken

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	ctlidentity "github.com/linkerd-go/linkerd/controller/identity"
)

// reviewer fakes the API server: it answers TokenReviews for known tokens.
type reviewer struct {
	users     map[string]string // token -> username
	audiences []string          // audiences the server reports back
	apiErr    error
	seen      []authnv1.TokenReviewSpec
}

func (r *reviewer) react(action k8stesting.Action) (bool, runtime.Object, error) {
	if r.apiErr != nil {
		return true, nil, r.apiErr
	}
	tr := action.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview).DeepCopy()
	r.seen = append(r.seen, tr.Spec)
	user, ok := r.users[tr.Spec.Token]
	if !ok {
		tr.Status = authnv1.TokenReviewStatus{Authenticated: false, Error: "invalid bearer token"}
		return true, tr, nil
	}
	auds := r.audiences
	if auds == nil {
		auds = tr.Spec.Audiences
	}
	tr.Status = authnv1.TokenReviewStatus{
		Authenticated: true,
		User:          authnv1.UserInfo{Username: user},
		Audiences:     auds,
	}
	return true, tr, nil
}

func newValidator(r *reviewer) *Validator {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "tokenreviews", r.react)
	return &Validator{Client: cs, ControllerNamespace: "linkerd", TrustDomain: "cluster.local"}
}

func TestValidate(t *testing.T) {
	users := map[string]string{
		"web-token":    "system:serviceaccount:emojivoto:web",
		"admin-token":  "kubernetes-admin",
		"bad-sa-token": "system:serviceaccount:emojivoto:Web_1",
		"short-token":  "system:serviceaccount:emojivoto",
		"extra-token":  "system:serviceaccount:emojivoto:web:x",
	}
	tests := []struct {
		name      string
		r         *reviewer
		token     string
		want      string
		rejected  bool // error wraps ErrTokenRejected
		otherErr  bool // error does not wrap it
		audiences []string
	}{
		{name: "service account", r: &reviewer{users: users}, token: "web-token",
			want: "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"},
		{name: "trailing newline", r: &reviewer{users: users}, token: "web-token\n",
			want: "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"},
		{name: "unknown token", r: &reviewer{users: users}, token: "nope", rejected: true},
		{name: "not a service account", r: &reviewer{users: users}, token: "admin-token", rejected: true},
		{name: "invalid service account name", r: &reviewer{users: users}, token: "bad-sa-token", rejected: true},
		{name: "malformed user", r: &reviewer{users: users}, token: "short-token", rejected: true},
		{name: "too many parts", r: &reviewer{users: users}, token: "extra-token", rejected: true},
		{name: "wrong audience echoed", r: &reviewer{users: users, audiences: []string{"kubernetes.default.svc"}}, token: "web-token", rejected: true},
		{name: "no audience echoed", r: &reviewer{users: users, audiences: []string{}}, token: "web-token", rejected: true},
		{name: "empty token", r: &reviewer{users: users}, token: " ", rejected: true},
		{name: "API error", r: &reviewer{users: users, apiErr: errors.New("connection refused")}, token: "web-token", otherErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newValidator(tt.r)
			got, err := v.Validate(context.Background(), []byte(tt.token))
			switch {
			case tt.rejected || tt.otherErr:
				if err == nil {
					t.Fatalf("Validate = %q, want an error", got)
				}
				if errors.Is(err, ctlidentity.ErrTokenRejected) != tt.rejected {
					t.Fatalf("error %v: wraps ErrTokenRejected = %v, want %v", err, !tt.rejected, tt.rejected)
				}
			case err != nil:
				t.Fatalf("Validate: %v", err)
			case got != tt.want:
				t.Fatalf("Validate = %q, want %q", got, tt.want)
			}
			if tt.r.apiErr == nil && tt.token != " " {
				if len(tt.r.seen) != 1 {
					t.Fatalf("%d token reviews, want 1", len(tt.r.seen))
				}
				spec := tt.r.seen[0]
				if !slices.Equal(spec.Audiences, []string{Audience}) {
					t.Errorf("review audiences = %q, want [%q]", spec.Audiences, Audience)
				}
				if spec.Token != strings.TrimSpace(tt.token) {
					t.Errorf("review token = %q", spec.Token)
				}
			}
		})
	}
}

func TestValidateOtherTrustDomain(t *testing.T) {
	r := &reviewer{users: map[string]string{"t": "system:serviceaccount:prod:api"}}
	v := newValidator(r)
	v.ControllerNamespace, v.TrustDomain, v.Audiences = "mesh", "example.org", []string{"custom"}
	got, err := v.Validate(context.Background(), []byte("t"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "api.prod.serviceaccount.identity.mesh.example.org"; got != want {
		t.Fatalf("Validate = %q, want %q", got, want)
	}
	if !slices.Equal(r.seen[0].Audiences, []string{"custom"}) {
		t.Fatalf("review audiences = %q", r.seen[0].Audiences)
	}
}

func TestNoClient(t *testing.T) {
	_, err := (&Validator{}).Validate(context.Background(), []byte("x"))
	if err == nil || errors.Is(err, ctlidentity.ErrTokenRejected) {
		t.Fatalf("Validate without client: %v, want a non-rejection error", err)
	}
}
