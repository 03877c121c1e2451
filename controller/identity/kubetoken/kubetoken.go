// Package kubetoken validates proxies' ServiceAccount tokens with the
// Kubernetes TokenReview API.
package kubetoken

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	ctlidentity "github.com/linkerd-go/linkerd/controller/identity"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// Audience is the audience of the projected token the proxy presents.
const Audience = k8s.IdentityTokenAudience

const serviceAccountPrefix = "system:serviceaccount:"

// Validator asks the Kubernetes API server who a token belongs to.
type Validator struct {
	// Client talks to the API server. Required.
	Client kubernetes.Interface
	// ControllerNamespace and TrustDomain complete identity names.
	ControllerNamespace string
	TrustDomain         string
	// Audiences the token must be valid for; nil means [Audience].
	Audiences []string
}

var _ ctlidentity.TokenValidator = (*Validator)(nil)

// Validate creates a TokenReview for token and returns the identity name of
// the ServiceAccount it authenticates. An unauthenticated token, a token
// for another audience or for a user that is not a ServiceAccount is
// rejected (the error wraps ctlidentity.ErrTokenRejected); a failed API
// call is returned as is.
func (v *Validator) Validate(ctx context.Context, token []byte) (string, error) {
	if v.Client == nil {
		return "", errors.New("token review: no Kubernetes client")
	}
	token = bytes.TrimSpace(token)
	if len(token) == 0 {
		return "", fmt.Errorf("%w: empty token", ctlidentity.ErrTokenRejected)
	}
	audiences := v.Audiences
	if audiences == nil {
		audiences = []string{Audience}
	}
	review, err := v.Client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: string(token), Audiences: audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token review: %w", err)
	}
	st := review.Status
	if !st.Authenticated {
		reason := st.Error
		if reason == "" {
			reason = "not authenticated"
		}
		return "", fmt.Errorf("%w: token review: %s", ctlidentity.ErrTokenRejected, reason)
	}
	// An audience-aware API server echoes the requested audiences the token
	// is valid for; anything else is not proof of the audience.
	if !slices.ContainsFunc(audiences, func(a string) bool { return slices.Contains(st.Audiences, a) }) {
		return "", fmt.Errorf("%w: token review: token is not valid for audiences %q (valid for %q)", ctlidentity.ErrTokenRejected, audiences, st.Audiences)
	}
	ns, sa, err := parseServiceAccountUser(st.User.Username)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ctlidentity.ErrTokenRejected, err)
	}
	name := identity.Name(sa, ns, v.ControllerNamespace, v.TrustDomain)
	if _, _, err := identity.Parse(name, v.ControllerNamespace, v.TrustDomain); err != nil {
		return "", fmt.Errorf("%w: service account %s/%s: %w", ctlidentity.ErrTokenRejected, ns, sa, err)
	}
	return name, nil
}

// parseServiceAccountUser splits "system:serviceaccount:<ns>:<sa>".
func parseServiceAccountUser(user string) (ns, sa string, err error) {
	rest, ok := strings.CutPrefix(user, serviceAccountPrefix)
	if !ok {
		return "", "", fmt.Errorf("user %q is not a service account", user)
	}
	ns, sa, ok = strings.Cut(rest, ":")
	if !ok || ns == "" || sa == "" || strings.Contains(sa, ":") {
		return "", "", fmt.Errorf("malformed service account user %q", user)
	}
	return ns, sa, nil
}
