// Package spvalidator is the ServiceProfile validator: a validating
// admission webhook that refuses a ServiceProfile the proxies could not
// use, naming the field at fault, as Linkerd's sp-validator does.
//
// Decoding is strict (an unknown field is an error, even inside the
// conditions the CRD schema leaves open), and the profile is checked with
// package v1alpha2's Validate: its name, every route's condition, response
// classes, timeout, the retry budget and the traffic-split overrides.
package spvalidator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/controller/webhook"
	sp "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
)

// WebhookName is the webhook's name in its ValidatingWebhookConfiguration;
// the API server quotes it when the validator denies a request.
const WebhookName = "linkerd-sp-validator.linkerd.io"

// Path is where the webhook configuration sends reviews.
const Path = "/"

// Server is the ServiceProfile validator.
type Server struct {
	log *slog.Logger
}

// New returns a validator logging to log (nil: slog.Default()).
func New(log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{log: log}
}

// Handler serves AdmissionReviews on Path. A panic of the validator is
// answered with HTTP 500, so the API server applies the failurePolicy.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+Path+"{$}", &webhook.Handler{Admit: s.Admit, Log: s.log})
	return mux
}

// Serve serves the webhook over TLS on lis until ctx is done.
func (s *Server) Serve(ctx context.Context, lis net.Listener, tlsConfig *tls.Config) error {
	return webhook.Serve(ctx, "sp-validator", lis, s.Handler(), tlsConfig, s.log)
}

var serviceProfileResource = metav1.GroupResource{Group: sp.GroupName, Resource: sp.Resource}

// Admit decides one request: a ServiceProfile being created or updated is
// denied when it is invalid; anything else is allowed.
func (s *Server) Admit(_ context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if (metav1.GroupResource{Group: req.Resource.Group, Resource: req.Resource.Resource}) != serviceProfileResource ||
		req.SubResource != "" || (req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) {
		return webhook.Allowed()
	}
	log := s.log.With("namespace", req.Namespace, "name", req.Name, "operation", req.Operation)
	profile, err := sp.Decode(req.Object.Raw)
	if err == nil {
		err = sp.Validate(profile)
	}
	if err == nil {
		log.Debug("ServiceProfile accepted")
		return webhook.Allowed()
	}
	var invalid *sp.InvalidError
	if !errors.As(err, &invalid) {
		log.Info("ServiceProfile undecodable", "error", err)
		return webhook.Denied(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
	}
	log.Info("ServiceProfile denied", "error", err)
	return webhook.Denied(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, fmt.Sprintf("ServiceProfile %q is invalid: %v", req.Name, err))
}
