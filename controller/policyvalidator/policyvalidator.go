// Package policyvalidator is the policy validator: a validating admission
// webhook that refuses a policy resource (Server, ServerAuthorization,
// AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication,
// HTTPRoute of policy.linkerd.io or gateway.networking.k8s.io) the
// policy controller could not use, naming the field at fault, as Linkerd's
// policy-validator does. Decoding is strict and the checks are package
// pkg/apis/policy's.
package policyvalidator

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/controller/webhook"
	"github.com/linkerd-go/linkerd/pkg/apis/policy"
)

// WebhookName is the webhook's name in its ValidatingWebhookConfiguration.
const WebhookName = "linkerd-policy-validator.linkerd.io"

// Path is where the webhook configuration sends reviews.
const Path = "/"

// Server is the policy validator.
type Server struct{ log *slog.Logger }

// New returns a validator logging to log (nil: slog.Default()).
func New(log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{log: log}
}

// Handler serves AdmissionReviews on Path.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+Path+"{$}", &webhook.Handler{Admit: s.Admit, Log: s.log})
	return mux
}

// Serve serves the webhook over TLS on lis until ctx is done.
func (s *Server) Serve(ctx context.Context, lis net.Listener, tlsConfig *tls.Config) error {
	return webhook.Serve(ctx, "policy-validator", lis, s.Handler(), tlsConfig, s.log)
}

var resources = map[string]bool{
	"servers": true, "serverauthorizations": true, "authorizationpolicies": true,
	"meshtlsauthentications": true, "networkauthentications": true, "httproutes": true,
}

// validated reports whether the resource is one the validator checks: a
// policy.linkerd.io resource, or a gateway.networking.k8s.io HTTPRoute.
func validated(group, resource string) bool {
	switch group {
	case policy.GroupName:
		return resources[resource]
	case policy.GatewayGroupName:
		return resource == "httproutes"
	}
	return false
}

// Admit decides one request: a policy resource being created or updated is
// denied when invalid; anything else is allowed.
func (s *Server) Admit(_ context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if !validated(req.Resource.Group, req.Resource.Resource) || req.SubResource != "" ||
		(req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) {
		return webhook.Allowed()
	}
	log := s.log.With("namespace", req.Namespace, "name", req.Name, "resource", req.Resource.Resource, "operation", req.Operation)
	var obj map[string]any
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		return webhook.Denied(http.StatusBadRequest, metav1.StatusReasonBadRequest, "decoding the object: "+err.Error())
	}
	delete(obj, "status") // not ours to check
	raw, err := json.Marshal(obj)
	if err == nil {
		_, err = policy.Decode(raw)
	}
	if err != nil {
		log.Info("policy resource denied", "error", err)
		return webhook.Denied(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, err.Error())
	}
	log.Debug("policy resource accepted")
	return webhook.Allowed()
}
