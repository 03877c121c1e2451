// Package tap is the tap service's client side: it taps several pods'
// proxies at once (their tap API on the control port, over mTLS with the
// tap service's identity) and merges their events.
package tap

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
)

// Target is a pod to tap.
type Target struct {
	Namespace, Pod string
	// Addr is the pod's tap API ("ip:4190").
	Addr string
	// TLS proves the tap service's identity and verifies the proxy's.
	TLS *tls.Config
}

// Event is an event of a tapped pod.
type Event struct {
	Namespace, Pod string
	*tapv1.TapEvent
}

// Observe taps every target with match, at most maxRPS requests per second
// in all, and sends their events on the returned channel until ctx ends or
// every tap ended; a tap that fails sends its error on errs (buffered for
// all targets). Both channels are closed when all taps ended.
func Observe(ctx context.Context, targets []Target, match *tapv1.Match, maxRPS uint32) (<-chan Event, <-chan error) {
	events := make(chan Event, 256)
	errs := make(chan error, len(targets))
	per := maxRPS
	if n := uint32(len(targets)); n > 0 && maxRPS > 0 {
		per = max(1, (maxRPS+n-1)/n)
	}
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			if err := observe(ctx, t, &tapv1.ObserveRequest{Limit: per, Match: match}, events); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("tap %s/%s: %w", t.Namespace, t.Pod, err)
			}
		})
	}
	go func() {
		wg.Wait()
		close(events)
		close(errs)
	}()
	return events, errs
}

func observe(ctx context.Context, t Target, req *tapv1.ObserveRequest, out chan<- Event) error {
	conn, err := grpc.NewClient(t.Addr, grpc.WithTransportCredentials(credentials.NewTLS(t.TLS)))
	if err != nil {
		return err
	}
	defer conn.Close()
	// The stream ends when ctx does, but carries no deadline: a deadline
	// sent to the proxy (grpc-timeout) may end the stream there first,
	// which the client would see as an early EOF.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	stream, err := tapv1.NewTapClient(conn).Observe(sctx, req)
	if err != nil {
		return err
	}
	for {
		batch, err := stream.Recv()
		if err != nil {
			return err
		}
		for _, ev := range batch.GetEvents() {
			select {
			case out <- Event{Namespace: t.Namespace, Pod: t.Pod, TapEvent: ev}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}
