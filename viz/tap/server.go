package tap

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

// PodResolver resolves a resource to the pods to tap (Resolver on
// Kubernetes); its errors are gRPC statuses.
type PodResolver interface {
	Resolve(ctx context.Context, kind, ns, name string) ([]PodTarget, error)
}

// Server is the tap service: it resolves a resource to its pods, taps
// each pod's proxy with the tap service's identity, and streams the merged
// events.
//
// Who may tap: in the chart, `linkerd viz tap` reaches the API by a
// port-forward through the Kubernetes API to the pod's loopback (which
// needs the pods/portforward permission in the viz namespace), and the
// dashboard's web server through the tap Service, which the tap pod's proxy
// admits for the web ServiceAccount's identity only (a Server and its
// ServerAuthorization). Linkerd's finer check (a SubjectAccessReview of
// "watch" on the tapped resource, made possible by its APIService's
// authenticated user) is not done: there is no authenticated caller behind
// a port-forward.
type Server struct {
	vizv1.UnimplementedTapServiceServer
	Pods PodResolver
	// TLS returns the client configuration to tap the proxy whose identity
	// is serverName.
	TLS func(serverName string) *tls.Config
	Log *slog.Logger
}

// TapByResource implements vizv1.TapServiceServer.
func (s *Server) TapByResource(req *vizv1.TapByResourceRequest, stream grpc.ServerStreamingServer[vizv1.TapByResourceEvent]) error {
	t := req.GetTarget()
	if t.GetKind() == "" || t.GetName() == "" {
		return status.Error(codes.InvalidArgument, "a tap needs a target resource (kind and name)")
	}
	ctx := stream.Context()
	pods, err := s.Pods.Resolve(ctx, t.GetKind(), t.GetNamespace(), t.GetName())
	if err != nil {
		return err
	}
	targets := make([]Target, 0, len(pods))
	for _, p := range pods {
		targets = append(targets, Target{Namespace: p.Namespace, Pod: p.Name, Addr: p.Addr, TLS: s.TLS(p.Identity)})
	}
	match := req.GetMatch()
	if to := req.GetTo(); to != nil {
		m := &tapv1.Match{Direction: "outbound"}
		if match != nil {
			m.Method, m.Authority, m.PathPrefix = match.GetMethod(), match.GetAuthority(), match.GetPathPrefix()
		}
		match = m
	}
	s.log().Info("tap", "target", t.GetKind()+"/"+t.GetName(), "namespace", t.GetNamespace(), "pods", len(targets))
	// Tell the client the taps are being set up before any event.
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	events, errs := Observe(ctx, targets, match, req.GetMaxRps())
	var sendErr error
	for ev := range events {
		if sendErr != nil || !MatchTo(ev.TapEvent, req.GetTo()) {
			continue // drain until the taps see ctx end
		}
		sendErr = stream.Send(&vizv1.TapByResourceEvent{Namespace: ev.Namespace, Pod: ev.Pod, Event: ev.TapEvent})
	}
	if sendErr != nil {
		return sendErr
	}
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 && ctx.Err() == nil {
		return status.Error(codes.Unavailable, errors.Join(all...).Error())
	}
	return nil
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

var _ vizv1.TapServiceServer = (*Server)(nil)
