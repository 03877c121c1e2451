// Package h1 is the proxy's HTTP/1.1 fast path: one goroutine per client
// connection parses each request head in place, forwards the request on a
// pooled upstream connection, and relays the response, with no per-request
// goroutine unless a request body has to stream while the response does.
//
// Malformed requests, ambiguous framing (request smuggling) and heads
// beyond the limits it answers itself, 400 or 431, and closes the
// connection. Whatever else it does not handle (protocol upgrades,
// CONNECT, Expect, HTTP/1.0) it hands off, from the current request
// onward, to a general-purpose server through Handler.HandOff, replaying
// the bytes it already read with "Connection: close" added to the request:
// the general-purpose server serves that request only, so that every
// request head on a connection is checked here.
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
	"github.com/linkerd-go/linkerd/proxy/h2"
	"github.com/linkerd-go/linkerd/proxy/metrics"
)

// DefaultIdleClientTimeout closes client connections idle this long between requests.
const DefaultIdleClientTimeout = 10 * time.Minute

// DefaultHeadTimeout is how long a client may take to send a request head
// once its first byte arrived.
const DefaultHeadTimeout = 10 * time.Second

// HeaderProxyError is the response header field of answers the proxy makes
// itself, with the reason.
const HeaderProxyError = "l5d-proxy-error"

// Request describes, to a Handler, the request being forwarded. It is
// valid until the exchange ends.
type Request struct {
	// Authority is the Host header, or the authority of an absolute-form target.
	Authority string
	// GRPC is set when the Content-Type is application/grpc or a subtype.
	GRPC bool
	// Start is when the request head was read.
	Start time.Time

	method   string
	target   []byte
	head     *requestHead // valid during Handler.Route
	h2fields []h2.Field   // instead of head, for requests that came over HTTP/2
	h2path   string       // instead of target, for those
}

// Header returns the first value of the named request header field, ""
// when absent. Only valid during Handler.Route.
func (r *Request) Header(name string) string {
	for _, f := range r.h2fields {
		if equalFoldString([]byte(f.Name), name) {
			return f.Value
		}
	}
	if r.head == nil {
		return ""
	}
	for i := range r.head.fields {
		f := &r.head.fields[i]
		if !f.hop && equalFoldString(f.name.of(r.head.raw), name) {
			return string(f.value.of(r.head.raw))
		}
	}
	return ""
}

// Method returns the request method.
func (r *Request) Method() string { return r.method }

// Target returns the request target as sent by the client.
func (r *Request) Target() string {
	if r.target == nil {
		return r.h2path
	}
	return string(r.target)
}

// Route is where a request goes and how it is accounted for.
type Route struct {
	Endpoint *balance.Endpoint
	// Metrics count the request, its response latency and its response.
	Metrics *metrics.HTTP
	// Done tells the balancer how the request went; it is called once.
	Done func(error)
	// Header, when set, is one more request header field sent upstream,
	// rendered as "Name: value\r\n".
	Header []byte
	// Upgrade sends the request over HTTP/2 to the endpoint, a meshed
	// proxy that accepts it (see Server.H2 and HeaderOrigProto), instead
	// of over an HTTP/1.1 connection.
	Upgrade bool
}

// Handler connects the fast path to the rest of the proxy for one client
// connection.
type Handler interface {
	// Route picks the endpoint of a request.
	Route(ctx context.Context, req *Request) (Route, error)
	// Fail returns the answer to a request that could not be forwarded and
	// accounts for it: rt is nil when Route failed, otherwise connecting to
	// or exchanging with the endpoint failed before a response arrived.
	Fail(req *Request, rt *Route, err error) ErrorResponse
	// HandOff serves c, whose next bytes are the current request, on the
	// general-purpose server. It owns c, even when it returns an error.
	HandOff(c net.Conn) error
}

// ConnOptions adjust the requests forwarded from one client connection.
type ConnOptions struct {
	// OwnHeader names a request header field that only the proxy sets (such
	// as l5d-client-id): fields of that name sent by the client are removed,
	// and OwnValue, when not empty, is sent instead. It must not be a field
	// the proxy interprets (Host, framing, connection options).
	OwnHeader string
	OwnValue  string
}

// Server runs the fast path on client connections and drains them on shutdown.
type Server struct {
	// Pool keeps idle upstream connections.
	Pool *Pool
	// Dial connects to an endpoint.
	Dial func(ctx context.Context, ep *balance.Endpoint) (net.Conn, error)
	// H2 keeps the HTTP/2 connections to peer proxies that carry the
	// requests whose Route says Upgrade; nil sends every request over
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

// Serve runs the fast path on nc until the client closes it, an error ends
// it, the server drains or ctx ends, or a request is handed off. It owns nc.
func (s *Server) Serve(ctx context.Context, nc net.Conn, h Handler, opts ConnOptions) error {
	c := &conn{s: s, h: h, nc: nc, ownHeader: []byte(opts.OwnHeader), ownLine: ownLine(opts)}
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
	return h.HandOff(replay)
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
	h  Handler
	nc net.Conn
	r  *reader
	w  *bufio.Writer

	state  atomic.Int32
	closed atomic.Bool               // forceClose ran
	up     atomic.Pointer[upstream]  // in use, for forceClose
	stream atomic.Pointer[h2.Stream] // in use (upgraded requests), for forceClose

	req       requestHead
	resp      responseHead
	x         exchange
	pub       Request
	targetBuf []byte
	extraBuf  []byte     // ownLine and the route's header, when it has one
	body      chan error // result of a streamed request body
	tmp       reader     // reads a buffered chunked body in place
	h2        h2State    // scratch space of upgraded requests
	ownHeader []byte     // ConnOptions.OwnHeader
	ownLine   []byte     // the field sent for it, "" for none
}

// ownLine renders the field ConnOptions add to each request, or nil when
// there is none or it is not a valid field.
func ownLine(o ConnOptions) []byte {
	if o.OwnHeader == "" || o.OwnValue == "" || !isToken([]byte(o.OwnHeader)) {
		return nil
	}
	for i := range len(o.OwnValue) {
		if !fieldValueByte(o.OwnValue[i]) {
			return nil
		}
	}
	return []byte(o.OwnHeader + ": " + o.OwnValue + "\r\n")
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
		if len(c.ownHeader) > 0 {
			c.req.drop(c.ownHeader)
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
	msg := reason.Error()
	h := http.Header{http.CanonicalHeaderKey(HeaderProxyError): {msg}, "Content-Type": {"text/plain; charset=utf-8"}}
	_ = c.nc.SetWriteDeadline(time.Now().Add(rejectLinger))
	writeErrorResponse(c.w, ErrorResponse{Status: status, Header: h, Body: msg + "\n"}, true)
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
	return &replayConn{Conn: c.nc, prefix: prefix}
}

// replayConn replays bytes already read before reading from the connection.
type replayConn struct {
	net.Conn
	prefix []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the connection when it supports it (tunnels).
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// Unwrap returns the underlying connection.
func (c *replayConn) Unwrap() net.Conn { return c.Conn }

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
