package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"time"

	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/h2"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// bodyGrace is how long a response that ended may wait for the request
// body to finish streaming before the exchange is cut.
const bodyGrace = 50 * time.Millisecond

var (
	errClientClosed  = errors.New("h1: client connection closed")
	errBodyAbandoned = errors.New("h1: response ended before the request body")
)

// Request body kinds.
type bodyKind uint8

const (
	bodyNone     bodyKind = iota
	bodyBuffered          // entirely in the read buffer: sent from there, replayable
	bodyStream            // copied on a second goroutine while the response streams
)

// Response body framings.
type framing uint8

const (
	framingNone framing = iota
	framingLength
	framingChunked
	framingClose // delimited by the end of the upstream connection
)

// exchange holds what one request/response exchange needs once the
// request head may be gone from the read buffer.
type exchange struct {
	headLen  int
	body     bodyKind
	bodyLen  int   // buffered body bytes after the head
	remain   int64 // Content-Length of a streamed body
	chunked  bool
	head     bool // HEAD request
	grpc     bool
	close    bool // the client asked to close
	u        *upstream
	s        *h2.Stream // the stream of an orig-proto request
	streamed bool       // the body goroutine was started
	interim  bool       // an interim response went to the client (orig-proto requests)
	h2head   h2.Head    // the response head of an orig-proto request
}

// exchange forwards the request whose head (n bytes) is buffered and
// relays the response. It reports whether the connection can serve
// another request.
func (c *conn) exchange(ctx context.Context, n int) bool {
	h := &c.req
	raw := h.raw
	x := &c.x
	*x = exchange{headLen: n, chunked: h.chunked, head: h.head, grpc: h.grpc, close: h.close}
	rest := c.r.buffered()[n:]
	switch {
	case h.chunked:
		if l, ok := chunkedLen(rest); ok {
			x.body, x.bodyLen = bodyBuffered, l
		} else {
			x.body = bodyStream
		}
	case h.contentLength > 0:
		if int64(len(rest)) >= h.contentLength {
			x.body, x.bodyLen = bodyBuffered, int(h.contentLength)
		} else {
			x.body, x.remain = bodyStream, h.contentLength
		}
	}

	px := &c.px
	px.Reset(c.pc, pipeline.HTTP1, time.Now())
	px.GRPC = h.grpc
	px.Method = methodString(h.method.of(raw))
	if a := h.authority.of(raw); string(a) != c.authority {
		c.authority = string(a)
	}
	px.Authority = c.authority
	if t := h.target.of(raw); string(t) != c.path {
		c.path = string(t)
	}
	px.Path = c.path
	c.hv.h = h
	px.Header = &c.hv
	err := c.s.Chain.Serve(ctx, px, c)
	c.hv.h = nil
	px.Header = nil
	if err != nil {
		return c.fail(x, err)
	}
	if x.s != nil {
		return c.relayH2(x, x.h2head)
	}
	return c.relay(x)
}

// Forward implements pipeline.Forwarder: it sends the request to its
// endpoint, as HTTP/1.1 or, when the chain says OrigProto, over HTTP/2 to
// the endpoint's proxy, and waits for the final response head.
func (c *conn) Forward(ctx context.Context, px *pipeline.Exchange) error {
	x := &c.x
	if px.Edit != nil {
		for _, name := range px.Edit.Remove {
			c.req.drop([]byte(name))
		}
	}
	if !slices.Equal(px.Fields, c.rendered) {
		// The chain's fields rarely change on a connection: rendered (and
		// checked) once, reused while they stay the same.
		c.extraBuf = renderFields(c.extraBuf[:0], px.Fields)
		c.rendered = append(c.rendered[:0], px.Fields...)
	}
	if px.OrigProto && c.s.H2 != nil {
		authority := px.Authority
		if px.Edit != nil && px.Edit.Authority != "" {
			authority = px.Edit.Authority
		}
		c.h2.fields = requestFields(c.h2.fields[:0], &c.req, authority, px.Fields, &c.h2.name)
		if px.Edit != nil && px.Edit.Path != "" {
			for i := range c.h2.fields {
				if c.h2.fields[i].Name == ":path" {
					c.h2.fields[i].Value = px.Edit.Path
				}
			}
		}
		head, err := c.roundTripH2(ctx, x, px.Endpoint)
		if err != nil {
			return err
		}
		x.h2head = head
		px.Responded(head.Status)
		return nil
	}
	if err := c.roundTrip(ctx, x, px.Endpoint); err != nil {
		return err
	}
	px.Responded(c.resp.status)
	px.GRPCStatus = c.resp.grpcStatus
	return nil
}

// Replayable implements pipeline.Replayer: a request without a body, or
// with one whole in the buffer, can be sent again.
func (c *conn) Replayable() bool {
	x := &c.x
	return x.body != bodyStream && !x.streamed && !x.interim
}

// DiscardResponse implements pipeline.Replayer: the last attempt's
// response goes with its connection (or stream).
func (c *conn) DiscardResponse() {
	c.release(&c.x, false)
	c.x.h2head = h2.Head{}
}

// renderFields appends fields as HTTP/1.1 field lines; fields with invalid
// names or values are left out.
func renderFields(dst []byte, fields []pipeline.Field) []byte {
	for _, f := range fields {
		if !isToken([]byte(f.Name)) || !validValue(f.Value) {
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

func validValue(v string) bool {
	for i := range len(v) {
		if !fieldValueByte(v[i]) {
			return false
		}
	}
	return true
}

// roundTrip sends the request and reads the final response head, which
// stays buffered in x.u. Interim (1xx) responses are forwarded. A pooled
// connection found closed before any response byte is replaced by a new
// one once, when the request can be sent again.
func (c *conn) roundTrip(ctx context.Context, x *exchange, ep *balance.Endpoint) error {
	if err := c.connect(ctx, x, ep, c.s.Pool.get(keyOf(ep))); err != nil {
		return err
	}
	// The context ending (a route's timeout) stops the wait for the head:
	// the upstream connection, broken, is not reused.
	stop := context.AfterFunc(ctx, func() {
		if u := c.up.Load(); u != nil && pipeline.TimedOut(ctx) {
			_ = u.nc.SetReadDeadline(aLongTimeAgo)
		}
	})
	defer func() {
		if !stop() {
			if u := c.up.Load(); u != nil {
				_ = u.nc.SetReadDeadline(time.Time{})
			}
		}
	}()
	for attempt := 0; ; attempt++ {
		interim := false
		err := c.send(x)
		if err == nil {
			interim, err = c.readResponseHead(x)
		}
		if err == nil {
			return nil
		}
		if attempt > 0 || !x.u.reused || interim || x.streamed || len(x.u.r.buffered()) > 0 || !isStale(err) {
			return fmt.Errorf("exchange with %s: %w", ep.Addr, err)
		}
		c.s.log().Debug("retrying request on a new connection", "endpoint", ep.Addr, "err", err)
		c.release(x, false)
		if err := c.connect(ctx, x, ep, nil); err != nil {
			return err
		}
	}
}

// connect makes u, or a new connection when u is nil, the exchange's upstream.
func (c *conn) connect(ctx context.Context, x *exchange, ep *balance.Endpoint, u *upstream) error {
	if u == nil {
		nc, err := c.s.Dial(ctx, ep)
		if err != nil {
			return err
		}
		u = newUpstream(nc, keyOf(ep))
	}
	c.up.Store(u)
	if c.closed.Load() {
		c.up.Store(nil)
		u.close()
		return errClientClosed
	}
	x.u = u
	return nil
}

// release gives up the exchange's upstream connection: back to the pool
// when reuse is true, closed otherwise.
func (c *conn) release(x *exchange, reuse bool) {
	if x.s != nil {
		x.s.Close()
		x.s = nil
		c.stream.Store(nil)
	}
	u := x.u
	if u == nil {
		return
	}
	x.u = nil
	c.up.Store(nil)
	if reuse && !c.closed.Load() {
		c.s.Pool.put(u)
		return
	}
	u.close()
}

// send writes the request head and a buffered body upstream, or starts
// streaming the body.
func (c *conn) send(x *exchange) error {
	u := x.u
	if e := c.px.Edit; e != nil {
		writeRewrittenHead(u.w, &c.req, c.extraBuf, e.Authority, e.Path)
	} else {
		writeRequestHead(u.w, &c.req, c.extraBuf)
	}
	switch x.body {
	case bodyNone:
	case bodyBuffered:
		body := c.r.buffered()[x.headLen : x.headLen+x.bodyLen]
		if x.chunked {
			c.tmp = reader{buf: body, w: len(body), rd: eofReader{}}
			if err := copyChunked(u.w, &c.tmp, nil); err != nil {
				return err
			}
		} else {
			_, _ = u.w.Write(body)
		}
	case bodyStream:
		// The head leaves the buffer: the body goroutine reads after it.
		c.r.discard(x.headLen)
		x.headLen = 0
		if c.body == nil {
			c.body = make(chan error, 1)
		}
		x.streamed = true
		go c.streamBody(u, x.chunked, x.remain)
		return nil
	}
	return u.w.Flush()
}

// streamBody copies the rest of the request body upstream. When the client
// side fails, the upstream connection is closed: the request cannot end.
func (c *conn) streamBody(u *upstream, chunked bool, n int64) {
	var err error
	if chunked {
		err = copyChunked(u.w, c.r, nil)
	} else {
		err = copyN(u.w, c.r, n)
	}
	if err == nil {
		err = wrapWrite(u.w.Flush())
	}
	if err != nil && !isWriteError(err) {
		_ = u.nc.Close()
	}
	c.body <- err
}

// waitBody waits for a streamed request body, at most grace, then cuts it.
// It returns the body's error (errBodyAbandoned when cut).
func (c *conn) waitBody(x *exchange, grace time.Duration) error {
	if !x.streamed {
		return nil
	}
	x.streamed = false
	select {
	case err := <-c.body:
		return err
	default:
	}
	if grace > 0 {
		t := time.NewTimer(grace)
		select {
		case err := <-c.body:
			t.Stop()
			return err
		case <-t.C:
		}
	}
	_ = c.nc.SetReadDeadline(aLongTimeAgo)
	if x.s != nil {
		x.s.Cancel()
	} else {
		_ = x.u.nc.Close()
	}
	if err := <-c.body; err != nil {
		return fmt.Errorf("%w: %w", errBodyAbandoned, err)
	}
	return errBodyAbandoned
}

// readResponseHead reads response heads until a final one, forwarding
// interim ones to the client. interim reports whether one was forwarded.
func (c *conn) readResponseHead(x *exchange) (interim bool, err error) {
	u := x.u
	for {
		scanned := 0
		n, err := u.r.readHead(&scanned)
		if err != nil {
			return interim, err
		}
		if err := parseResponse(u.r.buffered()[:n], &c.resp, x.grpc); err != nil {
			return interim, err
		}
		if c.resp.status >= 200 {
			return interim, nil
		}
		writeResponseHead(c.w, &c.resp, false, false)
		u.r.discard(n)
		interim = true
		if err := c.w.Flush(); err != nil {
			return interim, fmt.Errorf("forward interim response: %w", errClientClosed)
		}
	}
}

// relay forwards the final response, buffered in x.u, to the client.
func (c *conn) relay(x *exchange) bool {
	u, resp := x.u, &c.resp

	fr := framingClose
	switch {
	case x.head || resp.status == 204 || resp.status == 304:
		fr = framingNone
	case resp.chunked:
		fr = framingChunked
	case resp.contentLength >= 0:
		fr = framingLength
	}
	keep := !x.close && fr != framingClose && !c.s.draining.Load()
	if e := c.px.Edit; e != nil {
		resp.drop(e.RespRemove)
		writeResponseHeadExtra(c.w, resp, fr == framingChunked, !keep, e.RespFields)
	} else {
		writeResponseHead(c.w, resp, fr == framingChunked, !keep)
	}
	u.r.discard(len(resp.raw))

	var err error
	switch fr {
	case framingLength:
		err = copyN(c.w, u.r, resp.contentLength)
	case framingChunked:
		err = copyChunked(c.w, u.r, func(name, value []byte) {
			if x.grpc && equalFold(name, "grpc-status") {
				if code, ok := parseGRPCStatus(value); ok {
					c.px.GRPCStatus = code
				}
			}
		})
	case framingClose:
		err = copyUntilEOF(c.w, u.r)
	}
	if err == nil {
		err = wrapWrite(c.w.Flush())
	}
	// The request body is done by now, or soon, or never.
	bodyErr := c.waitBody(x, bodyGrace)
	reuse := err == nil && bodyErr == nil && fr != framingClose && !resp.close && !resp.http10 &&
		len(u.r.buffered()) == 0
	c.release(x, reuse)
	return c.finish(x, err, bodyErr, keep)
}

// finish records the outcome of a forwarded exchange whose response has
// been written (or failed), and reports whether the client connection can
// go on to its next request.
func (c *conn) finish(x *exchange, err, bodyErr error, keep bool) bool {
	if err != nil && isWriteError(err) {
		// The client went away: it cancelled the request.
		err = fmt.Errorf("write response to client: %w: %w", context.Canceled, err)
	}
	c.px.Finish(err)
	if err != nil || bodyErr != nil {
		return false
	}
	c.r.discard(x.headLen + x.bodyLen)
	return keep
}

// fail answers a request that was not forwarded or got no response, and
// reports whether the connection can go on.
func (c *conn) fail(x *exchange, err error) bool {
	bodyErr := c.waitBody(x, bodyGrace)
	if bodyErr != nil && !errors.Is(bodyErr, errBodyAbandoned) && !isWriteError(bodyErr) && !errors.Is(err, errClientClosed) {
		// Reading the client's body failed, which broke the exchange:
		// report that, not its effect upstream.
		err = clientBodyError(bodyErr)
	}
	c.release(x, false)
	c.s.log().Debug("request failed", "method", c.px.Method, "authority", c.px.Authority, "target", c.px.Path, "err", err)
	a := c.px.Fail(0, err)
	c.px.Finish(nil)
	keep := x.body != bodyStream && !x.close && !c.s.draining.Load()
	writeErrorResponse(c.w, a, !keep)
	if c.w.Flush() != nil || !keep {
		return false
	}
	c.r.discard(x.headLen + x.bodyLen)
	return true
}

// clientBodyError maps a failure to read the request body: a client that
// went away cancels its request.
func clientBodyError(err error) error {
	switch {
	case errors.Is(err, errChunkSize), errors.Is(err, errChunkEnd), errors.Is(err, errLineTooLong),
		errors.Is(err, errTrailer), errors.Is(err, errTrailerTooBig), errors.Is(err, errBareLF):
		return &pipeline.ClientError{Status: 400, Err: fmt.Errorf("read request body: %w", err)}
	}
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("read request body: %w", context.Canceled)
	}
	return fmt.Errorf("read request body: %w", err)
}

// isStale reports whether err is how a connection the server already
// closed fails.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, net.ErrClosed)
}

// eofReader is the source of a reader over bytes already in memory.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
