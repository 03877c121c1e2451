package tap

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"

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
func (s *Server) Observe(req *tapv1.ObserveRequest, stream grpc.ServerStreamingServer[tapv1.TapEvents]) error {
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
	return sendBatches(ctx, t.events, t.full, batchInterval, stream.Send)
}

const (
	// batchInterval is how long events accumulate before they are sent:
	// one message (one write through TLS) for every request seen in that
	// time rather than three per request.
	batchInterval = 50 * time.Millisecond
	// maxBatch bounds a batch (and so a message's size).
	maxBatch = 256
)

// sendBatches sends the events from events in batches until ctx ends or a
// send fails: a batch starts with the first event to arrive and is sent
// interval later, or as soon as full says the queue holds maxBatch events.
// In between the sender sleeps: the requests' events wait in the queue
// rather than waking it up one by one.
func sendBatches(ctx context.Context, events <-chan queued, full <-chan struct{}, interval time.Duration, send func(*tapv1.TapEvents) error) error {
	timer := time.NewTimer(interval)
	timer.Stop()
	batch := &tapv1.TapEvents{Events: make([]*tapv1.TapEvent, 0, maxBatch)}
	held := make([]*state, 0, maxBatch) // the batch's events' states
	add := func(q queued) {
		batch.Events = append(batch.Events, q.ev)
		held = append(held, q.st)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case q := <-events:
			add(q)
		}
		timer.Reset(interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-full:
		case <-timer.C:
		}
		timer.Stop()
		// Send what is queued now (no more: the queue refills meanwhile).
		for n := len(events); ; n-- {
			if n == 0 || len(batch.Events) == maxBatch {
				if err := send(batch); err != nil {
					return err
				}
				// The events are encoded: their states may be reused.
				clear(batch.Events)
				batch.Events = batch.Events[:0]
				for i, st := range held {
					if st != nil {
						st.release()
					}
					held[i] = nil
				}
				held = held[:0]
				if ctx.Err() != nil {
					return nil
				}
			}
			if n == 0 {
				break
			}
			add(<-events)
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
