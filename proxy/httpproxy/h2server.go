package httpproxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/linkerd-go/linkerd/proxy/h1"
	"github.com/linkerd-go/linkerd/proxy/h2"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// h2Conns tracks the connections served by ServeH2, for draining.
type h2Conns struct {
	mu       sync.Mutex
	conns    map[*h2.Conn]struct{}
	draining bool
}

// ServeH2 serves an HTTP/2 connection (h2c and gRPC from an application,
// or a meshed peer proxy's connection) with the proxy's own HTTP/2 server:
// each stream's request goes through the chain, then to its endpoint over
// HTTP/2 (h2.Relay) or, when it is HTTP/1.1 a peer proxy carried over
// HTTP/2 (l5d-orig-proto), as HTTP/1.1 (h1.OrigProtoIn). It returns when the
// connection ends, and owns c.
func (s *Server) ServeH2(ctx context.Context, c net.Conn, pc *pipeline.Conn) {
	handler := func(st *h2.Stream) {
		defer st.Close()
		head, err := st.ReadHead()
		if err != nil {
			return
		}
		s.serveStream(ctx, st, head, pc)
	}
	var cc *h2.Conn
	err := h2.ServeConn(c, h2.Options{OnReject: s.onReject}, handler, func(conn *h2.Conn) {
		cc = conn
		s.h2.mu.Lock()
		defer s.h2.mu.Unlock()
		if s.h2.draining {
			_ = c.Close() // the read loop ends at once
			return
		}
		if s.h2.conns == nil {
			s.h2.conns = map[*h2.Conn]struct{}{}
		}
		s.h2.conns[conn] = struct{}{}
	})
	if cc != nil {
		s.h2.mu.Lock()
		delete(s.h2.conns, cc)
		s.h2.mu.Unlock()
	}
	if err != nil {
		s.log.Debug("HTTP/2 connection ended", "client", pc.Client, "err", err)
	}
}

// stream is the state of one HTTP/2 request: its exchange, and the client
// engine the chain's decisions pick.
type stream struct {
	px     pipeline.Exchange
	hv     h2Header
	s      *Server
	st     *h2.Stream
	head   h2.Head
	relay  *h2.Relay
	origIn *h1.OrigProtoIn
}

var streams = sync.Pool{New: func() any { return new(stream) }}

func (s *Server) serveStream(ctx context.Context, st *h2.Stream, head h2.Head, pc *pipeline.Conn) {
	e := streams.Get().(*stream)
	defer func() {
		if e.relay != nil {
			e.relay.Release()
		}
		if e.origIn != nil {
			e.origIn.Release()
		}
		*e = stream{}
		streams.Put(e)
	}()
	e.s, e.st, e.head = s, st, head
	px := &e.px
	px.Reset(pc, pipeline.HTTP2, time.Now())
	e.hv.fields = head.Fields
	px.Header = &e.hv
	ok := readPseudo(px, head)
	err := error(&pipeline.StatusError{Status: http.StatusBadRequest, Err: errMalformedH2})
	if ok {
		err = s.chain.Serve(ctx, px, e)
	}
	px.Header = nil
	switch {
	case err != nil && e.origIn != nil:
		e.origIn.Fail(err)
	case err != nil && e.relay != nil:
		e.relay.Fail(err)
	case err != nil:
		s.log.Debug("request failed", "method", px.Method, "authority", px.Authority, "path", px.Path, "err", err)
		var fields []h2.Field
		_ = h2.RespondAnswer(st, px.Fail(0, err), &fields)
		px.Finish(nil)
	case e.origIn != nil:
		e.origIn.Relay()
	default:
		e.relay.Respond()
	}
}

// Forward implements pipeline.Forwarder: the client engine for the
// request, by the chain's decision.
func (e *stream) Forward(ctx context.Context, px *pipeline.Exchange) error {
	if px.OrigProto {
		e.origIn = e.s.fast.OrigProtoIn(e.st, e.head)
		return e.origIn.Forward(ctx, px)
	}
	if px.Method == http.MethodConnect {
		return &pipeline.StatusError{Status: http.StatusNotImplemented, Err: errors.New("CONNECT over HTTP/2 is not proxied")}
	}
	if e.relay == nil { // a retry forwards again with the same relay
		e.relay = e.s.h2pool.Relay(e.st, e.head, e.s.chain.OwnedFields())
	}
	return e.relay.Forward(ctx, px)
}

// Replayable implements pipeline.Replayer through the relay.
func (e *stream) Replayable() bool { return e.origIn == nil && e.relay != nil && e.relay.Replayable() }

// DiscardResponse implements pipeline.Replayer.
func (e *stream) DiscardResponse() {
	if e.relay != nil {
		e.relay.DiscardResponse()
	}
}

var errMalformedH2 = errors.New("malformed HTTP/2 request head")

// readPseudo fills the exchange's request from the head's pseudo-header
// fields; it reports whether they make a request.
func readPseudo(px *pipeline.Exchange, head h2.Head) bool {
	scheme := ""
	for _, f := range head.Fields {
		switch f.Name {
		case ":method":
			px.Method = f.Value
		case ":path":
			px.Path = f.Value
		case ":authority":
			px.Authority = f.Value
		case ":scheme":
			scheme = f.Value
		case "host":
			if px.Authority == "" {
				px.Authority = f.Value
			}
		case "content-type":
			px.GRPC = pipeline.IsGRPC(f.Value)
		}
	}
	if px.Method == http.MethodConnect {
		return px.Authority != ""
	}
	return px.Method != "" && px.Path != "" && scheme != ""
}

// h2Header reads an HTTP/2 head's fields (lower case) for the chain.
type h2Header struct{ fields []h2.Field }

func (h *h2Header) Get(name string) string {
	for _, f := range h.fields {
		if len(f.Name) == len(name) && (f.Name == name || strings.EqualFold(f.Name, name)) {
			return f.Value
		}
	}
	return ""
}

// shutdownH2 drains the ServeH2 connections until ctx ends.
func (s *Server) shutdownH2(ctx context.Context) error {
	conns := s.takeH2()
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Shutdown(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// closeH2 closes the ServeH2 connections at once.
func (s *Server) closeH2() {
	for _, c := range s.takeH2() {
		_ = c.Close()
	}
}

// takeH2 stops new ServeH2 connections and returns the open ones.
func (s *Server) takeH2() []*h2.Conn {
	s.h2.mu.Lock()
	defer s.h2.mu.Unlock()
	s.h2.draining = true
	conns := make([]*h2.Conn, 0, len(s.h2.conns))
	for c := range s.h2.conns {
		conns = append(conns, c)
	}
	return conns
}

var _ pipeline.Forwarder = (*stream)(nil)
