package tap

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	"github.com/linkerd-go/linkerd/proxy/meshtls"
	"github.com/linkerd-go/linkerd/proxy/metrics"
)

// Server is the proxy's tap API: only a client proving Identity (the tap
// service's, LINKERD2_PROXY_TAP_SVC_NAME) over mTLS may observe.
type Server struct {
	tapv1.UnimplementedTapServer
	Hub      *Hub
	Identity string
	Metrics  *metrics.Registry
	Logger   *slog.Logger
}

// Observe implements tapv1.TapServer.
func (s *Server) Observe(req *tapv1.ObserveRequest, stream grpc.ServerStreamingServer[tapv1.TapEvent]) error {
	ctx := stream.Context()
	id := clientIdentity(ctx)
	if id == "" || id != s.Identity {
		s.count("tap_denied_total")
		s.Logger.Debug("tap refused", "client_id", id)
		return status.Errorf(codes.PermissionDenied, "tap: client identity %q is not the tap service's", id)
	}
	s.count("tap_observe_total")
	t := s.Hub.Attach(req.GetMatch(), req.GetLimit())
	defer s.Hub.Detach(t)
	// Tell the client the tap is in place before any event.
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-t.Events():
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

func (s *Server) count(name string) {
	if s.Metrics != nil {
		s.Metrics.Counter(name, nil).Inc()
	}
}

// clientIdentity is the verified mTLS identity of the caller, "" without one.
func clientIdentity(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return ""
	}
	return meshtls.PeerIdentity(info.State)
}

// Serve serves the tap API on ln with the proxy's mesh TLS until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsConfig)))
	tapv1.RegisterTapServer(gs, s)
	stop := context.AfterFunc(ctx, gs.Stop)
	defer stop()
	if err := gs.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

var _ tapv1.TapServer = (*Server)(nil)
