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
	var ex exchanges
	for {
		batch, err := stream.Recv()
		if err != nil {
			return err
		}
		for _, ev := range batch.GetEvents() {
			ex.restore(ev)
			select {
			case out <- Event{Namespace: t.Namespace, Pod: t.Pod, TapEvent: ev}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// maxExchanges bounds the exchanges a tap remembers between their
// request-init and their response-end.
const maxExchanges = 10000

// exchanges are the fields of one proxy's tapped exchanges in flight, by
// id: the proxy sends them in the request-init only, and restore copies
// them into the exchange's response events.
type exchanges map[uint64]*exchangeFields

// exchangeFields are what request-init says of its exchange.
type exchangeFields struct {
	direction, source, destination, tls, clientID, serverID string
	meta                                                    map[string]string
}

// restore remembers the fields of ev if it is a request-init, and fills
// them in if it is a response event of an exchange whose request-init was
// seen (they stay empty otherwise, e.g. when the proxy dropped it). The
// destination metadata map is shared by the exchange's events.
func (ex *exchanges) restore(ev *tapv1.TapEvent) {
	if *ex == nil {
		*ex = exchanges{}
	}
	m := *ex
	switch e := ev.GetEvent().(type) {
	case *tapv1.TapEvent_RequestInit:
		if len(m) >= maxExchanges {
			for id := range m { // forget one: its response events stay bare
				delete(m, id)
				break
			}
		}
		m[e.RequestInit.GetId()] = &exchangeFields{direction: ev.Direction, source: ev.Source, destination: ev.Destination,
			tls: ev.Tls, clientID: ev.ClientId, serverID: ev.ServerId, meta: ev.DestinationMeta}
	case *tapv1.TapEvent_ResponseInit:
		m[e.ResponseInit.GetId()].fill(ev)
	case *tapv1.TapEvent_ResponseEnd:
		id := e.ResponseEnd.GetId()
		m[id].fill(ev)
		delete(m, id)
	}
}

// fill sets ev's exchange fields from f, when known.
func (f *exchangeFields) fill(ev *tapv1.TapEvent) {
	if f == nil {
		return
	}
	ev.Direction, ev.Source, ev.Destination = f.direction, f.source, f.destination
	ev.Tls, ev.ClientId, ev.ServerId, ev.DestinationMeta = f.tls, f.clientID, f.serverID, f.meta
}
