// Package h1 is the proxy's HTTP/1.1 fast path: one goroutine per client
// connection parses each request head in place, forwards the request on a
// pooled upstream connection, and relays the response, with no per-request
// goroutine unless a request body has to stream while the response does.
//
// Malformed requests, ambiguous framing (request smuggling) and heads
// beyond the limits it answers itself, 400 or 431, and closes the
// connection. Whatever else it does not handle (protocol upgrades,
// CONNECT, Expect, HTTP/1.0) it hands off, from the current request
// onward, to a general-purpose server through Server.HandOff, replaying
// the bytes it already read with "Connection: close" added to the request:
// the general-purpose server serves that request only, so that every
// request head on a connection is checked here. Every request it forwards
// goes through the direction's pipeline.Chain first.
package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/detect"
	"github.com/linkerd-go/linkerd/proxy/h2"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// DefaultIdleClientTimeout closes client connections idle this long between requests.
const DefaultIdleClientTimeout = 10 * time.Minute

// DefaultHeadTimeout is how long a client may take to send a request head
// once its first byte arrived.
const DefaultHeadTimeout = 10 * time.Second

// headerView reads the request head's fields for the pipeline's layers.
// It is valid while the chain runs.
type headerView struct{ h *requestHead }

// Get implements pipeline.HeaderReader.
func (v *headerView) Get(name string) string {
	h := v.h
	if h == nil {
		return ""
	}
	for i := range h.fields {
		f := &h.fields[i]
		if !f.hop && equalFoldString(f.name.of(h.raw), name) {
			return string(f.value.of(h.raw))
		}
	}
	return ""
}

// Server runs the fast path on client connections and drains them on shutdown.
type Server struct {
	// Chain is the direction's request path: every request goes through it,
	// with the connection as its terminal (the HTTP/1.1 client engine, or
	// HTTP/2 to a peer proxy when the chain sets OrigProto).
	Chain *pipeline.Chain
	// HandOff serves c, whose next bytes are the current request, on the
	// general-purpose server. It owns c, even when it returns an error.
	HandOff func(c net.Conn, pc *pipeline.Conn) error
	// Pool keeps idle upstream connections.
	Pool *Pool
	// Dial connects to an endpoint.
	Dial func(ctx context.Context, ep *balance.Endpoint) (net.Conn, error)
	// H2 keeps the HTTP/2 connections to peer proxies that carry the
	// requests the chain marks OrigProto; nil sends every request over
	// HTTP/1.1.
	H2 *h2.Pool
	// IdleTimeout closes client connections idle this long (default DefaultIdleClientTimeout).
	IdleTimeout time.Duration
	// HeadTimeout closes client connections that take longer to send a
	// request head (default DefaultHeadTimeout).
	HeadTimeout time.Duration
	// OnReject, when set, is told of each request the fast path answered
	// itself without forwarding it (malformed, ambiguous framing, over the
	// limits), with the status it answered.
	OnReject func(status int, reason error)
	Logger   *slog.Logger

	draining atomic.Bool
	mu       sync.Mutex
	conns    map[*conn]struct{}
	drained  chan struct{} // closed once draining and no connection is left
}

// Client connection states, for draining: idle connections are closed at
// once, active ones after their exchange.
const (
	stateActive int32 = iota
	stateIdle
	stateClosing
)

var aLongTimeAgo = time.Unix(1, 0)

// ErrServerClosed is returned by Serve when the server is shutting down.
var ErrServerClosed = errors.New("h1: server is shutting down")

// Serve runs the fast path on nc, accepted as pc, until the client closes
// it, an error ends it, the server drains or ctx ends, or a request is
// handed off. It owns nc.
func (s *Server) Serve(ctx context.Context, nc net.Conn, pc *pipeline.Conn) error {
	c := &conn{s: s, pc: pc, nc: nc}
	for _, name := range s.Chain.OwnedFields() {
		c.owned = append(c.owned, []byte(name))
	}
	if !s.add(c) {
		_ = nc.Close()
		return ErrServerClosed
	}
	defer s.remove(c)
	stop := context.AfterFunc(ctx, c.forceClose)
	c.r = newReader(nc)
	c.w = writers.Get().(*bufio.Writer)
	c.w.Reset(nc)
	replay, err := c.serve(ctx)
	stop()
	c.r.release()
	c.w.Reset(nil)
	writers.Put(c.w)
	if replay == nil {
		_ = nc.Close()
		return err
	}
	// The hand-off needs no deadline of ours.
	_ = nc.SetDeadline(time.Time{})
	if c.closed.Load() {
		_ = nc.Close()
		return ErrServerClosed
	}
	return s.HandOff(replay, pc)
}

func (s *Server) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.drained != nil {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
}

// Shutdown stops serving new requests: idle connections close at once,
// active ones after their current exchange. It returns when none is left,
// or with ctx's error when ctx ends first (Close then ends the rest).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	if s.drained == nil {
		s.drained = make(chan struct{})
		if len(s.conns) == 0 {
			close(s.drained)
		}
	}
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosing) {
			// Wake it from waiting for a request; it closes itself.
			_ = c.nc.SetReadDeadline(aLongTimeAgo)
		}
	}
	drained := s.drained
	s.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes every connection at once.
func (s *Server) Close() {
	s.draining.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.forceClose()
	}
}

func (s *Server) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// conn is one client connection on the fast path.
type conn struct {
	s  *Server
	pc *pipeline.Conn
	nc net.Conn
	r  *reader
	w  *bufio.Writer

	state  atomic.Int32
	closed atomic.Bool               // forceClose ran
	up     atomic.Pointer[upstream]  // in use, for forceClose
	stream atomic.Pointer[h2.Stream] // in use (orig-proto requests), for forceClose

	req       requestHead
	resp      responseHead
	x         exchange
	px        pipeline.Exchange
	hv        headerView
	authority string           // the last request's, reused while it does not change
	path      string           // the same for the request target
	extraBuf  []byte           // the fields the chain adds, rendered
	rendered  []pipeline.Field // the fields extraBuf holds
	body      chan error       // result of a streamed request body
	tmp       reader           // reads a buffered chunked body in place
	h2        h2State          // scratch space of orig-proto requests
	owned     [][]byte         // the chain's owned fields: dropped from requests
}

// forceClose closes the client connection and the upstream one in use.
func (c *conn) forceClose() {
	c.closed.Store(true)
	_ = c.nc.Close()
	if u := c.up.Load(); u != nil {
		_ = u.nc.Close()
	}
	if st := c.stream.Load(); st != nil {
		st.Cancel() // the connection is shared: only the stream ends
	}
}

// serve runs the request loop. It returns the connection to hand off, or
// nil when the connection is done.
func (c *conn) serve(ctx context.Context) (net.Conn, error) {
	idle := c.s.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleClientTimeout
	}
	for {
		// Wait for the first byte of the next request.
		waited := false
		if len(c.r.buffered()) == 0 {
			if err := c.nc.SetReadDeadline(time.Now().Add(idle)); err != nil {
				return nil, err
			}
			waited = true
		}
		c.state.Store(stateIdle)
		if c.s.draining.Load() {
			return nil, nil
		}
		if waited {
			if err := c.r.fill(); err != nil {
				return nil, nil // closed, idle or drained: nothing to answer
			}
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return nil, nil // draining
		}
		n, err := c.readHead(waited)
		if err != nil {
			if errors.Is(err, errHeadTooBig) || errors.Is(err, errBareLF) {
				c.reject(err)
				return nil, nil
			}
			// Closed, timed out or cut short: nothing to answer.
			return nil, err
		}
		if err := parseRequest(c.r.buffered()[:n], &c.req); err != nil {
			if RejectStatus(err) != 0 {
				c.reject(err)
				return nil, nil
			}
			return c.handOff(err), nil
		}
		for _, name := range c.owned {
			c.req.drop(name)
		}
		if !c.exchange(ctx, n) {
			return nil, nil
		}
	}
}

// readHead waits for a complete request head, at most the head timeout
// once its first bytes are here, and returns its length. The connection's
// read deadline is cleared when waited (the idle deadline is set) or the
// head timeout was set.
func (c *conn) readHead(waited bool) (int, error) {
	n, next, err := scanHead(c.r.buffered(), 0)
	if err != nil {
		return 0, err
	}
	deadline := waited
	if n == 0 {
		timeout := c.s.HeadTimeout
		if timeout <= 0 {
			timeout = DefaultHeadTimeout
		}
		if err := c.nc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return 0, err
		}
		deadline = true
		scanned := next
		if n, err = c.r.readHead(&scanned); err != nil {
			return 0, err
		}
	}
	if deadline {
		if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// rejectLinger bounds how long a rejected client's remaining bytes are
// drained after the answer, so that closing does not reset the connection
// before the client read it.
const rejectLinger = 500 * time.Millisecond

// reject answers a request the fast path does not forward, with the status
// RejectStatus gives for reason, and ends the connection.
func (c *conn) reject(reason error) {
	status := RejectStatus(reason)
	if status == 0 {
		status = http.StatusBadRequest
	}
	c.s.log().Debug("rejecting HTTP/1 request", "status", status, "reason", reason)
	if c.s.OnReject != nil {
		c.s.OnReject(status, reason)
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(rejectLinger))
	writeErrorResponse(c.w, pipeline.ErrorAnswer(status, reason, false), true)
	if c.w.Flush() != nil {
		return
	}
	// Half-close and drain what the client still sends (bounded), so that
	// the close does not turn into a reset that could discard the answer.
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(rejectLinger))
	_, _ = io.Copy(io.Discard, io.LimitReader(c.nc, 256<<10))
}

// closeField is added to a handed-off request: the general-purpose server
// answers it, then closes the connection.
const closeField = "Connection: close\r\n"

// handOff returns the client connection positioned at the current request,
// whose head c.req was parsed, with a "Connection: close" field added.
func (c *conn) handOff(reason error) net.Conn {
	c.s.log().Debug("handing HTTP/1 connection off", "reason", reason)
	b := c.r.buffered()
	head := len(c.req.raw)
	prefix := make([]byte, 0, len(b)+len(closeField))
	prefix = append(prefix, b[:head-2]...)
	prefix = append(prefix, closeField...)
	prefix = append(prefix, b[head-2:]...)
	return detect.Replay(c.nc, prefix)
}

// methods interns the common request methods.
var methods = [...]string{
	http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete,
	http.MethodHead, http.MethodOptions, http.MethodPatch, http.MethodTrace,
}

func methodString(b []byte) string {
	for _, m := range methods {
		if string(b) == m {
			return m
		}
	}
	return string(b)
}
