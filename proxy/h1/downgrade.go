package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkerd-go/linkerd/proxy/h2"
)

// The inbound half of HeaderOrigProto: a request a peer proxy received as
// HTTP/1.1 and carried over HTTP/2 goes to its endpoint as HTTP/1.1 again,
// on the same pooled connections as the fast path's, and the response goes
// back on the stream.

// errBadUpgradedRequest is the answer to a request head that cannot be
// written as HTTP/1.1.
var errBadUpgradedRequest = errors.New("h1: malformed request from peer proxy")

// downgrade is the state of one downgraded exchange.
type downgrade struct {
	s    *Server
	st   *h2.Stream
	pub  Request
	rt   Route
	u    *upstream
	resp responseHead

	contentLength int64 // of the request, -1 when unknown
	chunked       bool  // the request body goes chunked
	hasBody       bool
	streamed      bool // the body goroutine was started
	body          chan error
	fields        []h2.Field
	trailer       []h2.Field
	name          []byte
	status        int
	grpcCode      int32
	responded     bool // a response head went on the stream
	ab            *abort
}

var downgrades = sync.Pool{New: func() any { return &downgrade{body: make(chan error, 1)} }}

// ServeH2 forwards the request on st, whose head (from ReadHead) is head,
// to its endpoint as HTTP/1.1 and answers st with the response, marked
// with HeaderOrigProto. h routes the request and answers it when it cannot
// be forwarded, as for a client connection (HandOff is not used); opts
// apply as to a client connection's requests. It does not close st.
func (s *Server) ServeH2(ctx context.Context, st *h2.Stream, head h2.Head, h Handler, opts ConnOptions) {
	d := downgrades.Get().(*downgrade)
	d.s, d.st = s, st
	d.serve(ctx, head, h, opts)
	body := d.body
	*d = downgrade{body: body, fields: d.fields[:0], trailer: d.trailer[:0], name: d.name[:0]}
	downgrades.Put(d)
}

func (d *downgrade) serve(ctx context.Context, head h2.Head, h Handler, opts ConnOptions) {
	d.pub = Request{Start: time.Now(), h2fields: head.Fields}
	d.contentLength, d.grpcCode = -1, -1
	method, path, ok := d.parseHead(head)
	d.pub.method, d.pub.h2path = method, path
	if !ok {
		d.answer(h.Fail(&d.pub, nil, errBadUpgradedRequest), http.StatusBadRequest)
		return
	}
	rt, err := h.Route(ctx, &d.pub)
	d.pub.h2fields = nil
	if err != nil {
		d.answer(h.Fail(&d.pub, nil, err), 0)
		return
	}
	d.rt = rt
	rt.Metrics.Request()
	// A reset (the peer proxy's client went away) ends the exchange. The
	// callback may run late, on the connection's goroutine: it only sees
	// its own abort.
	ab := &abort{}
	d.ab = ab
	d.st.OnReset(ab.cut)
	defer d.st.OnReset(nil)
	if err := d.roundTrip(ctx, method, path, head, opts); err != nil {
		d.fail(h, err)
		return
	}
	d.relay()
}

// abort cancels one downgraded exchange when its stream is reset.
type abort struct {
	cancelled atomic.Bool
	up        atomic.Pointer[upstream] // in use
}

func (a *abort) cut() {
	a.cancelled.Store(true)
	if u := a.up.Load(); u != nil {
		_ = u.nc.Close()
	}
}

// parseHead reads the pseudo-header fields and the framing of the request.
func (d *downgrade) parseHead(head h2.Head) (method, path string, ok bool) {
	for _, f := range head.Fields {
		switch f.Name {
		case ":method":
			method = f.Value
		case ":path":
			path = f.Value
		case ":authority":
			d.pub.Authority = f.Value
		case ":protocol":
			return method, path, false // extended CONNECT
		case "host":
			if d.pub.Authority == "" {
				d.pub.Authority = f.Value
			}
		case "content-length":
			n, ok := parseLength([]byte(f.Value))
			if !ok || (d.contentLength >= 0 && n != d.contentLength) {
				return method, path, false
			}
			d.contentLength = n
		case "content-type":
			if !d.pub.GRPC && len(f.Value) >= len("application/grpc") && f.Value[:len("application/grpc")] == "application/grpc" {
				d.pub.GRPC = true
			}
		}
	}
	if method == "" || method == http.MethodConnect || !isToken([]byte(method)) || path == "" || !validHost([]byte(d.pub.Authority)) {
		return method, path, false
	}
	for i := range len(path) {
		if c := path[i]; c <= ' ' || c >= 0x7f {
			return method, path, false
		}
	}
	if path[0] != '/' && (path != "*" || method != http.MethodOptions) {
		return method, path, false
	}
	d.hasBody = !d.st.Done() || d.st.Buffered() > 0
	d.chunked = d.hasBody && d.contentLength < 0
	return methodString([]byte(method)), path, true
}

// roundTrip sends the request upstream and reads the final response head,
// forwarding interim ones. A pooled connection found closed is replaced
// once when the request can be sent again.
func (d *downgrade) roundTrip(ctx context.Context, method, path string, head h2.Head, opts ConnOptions) error {
	ep := d.rt.Endpoint
	for attempt := 0; ; attempt++ {
		u := d.s.Pool.get(keyOf(ep))
		if u == nil {
			nc, err := d.s.Dial(ctx, ep)
			if err != nil {
				return err
			}
			u = newUpstream(nc, keyOf(ep))
		}
		d.u = u
		d.ab.up.Store(u)
		if d.ab.cancelled.Load() {
			return fmt.Errorf("peer proxy cancelled the request: %w", context.Canceled)
		}
		interim := false
		err := d.send(method, path, head, opts)
		if err == nil {
			interim, err = d.readResponseHead()
		}
		if err == nil {
			return nil
		}
		if attempt > 0 || !u.reused || interim || d.streamed || len(u.r.buffered()) > 0 || !isStale(err) {
			return fmt.Errorf("exchange with %s: %w", ep.Addr, err)
		}
		d.s.log().Debug("retrying request on a new connection", "endpoint", ep.Addr, "err", err)
		d.release(false)
	}
}

// send writes the request head and, when it is all there, the body
// upstream; a body still arriving is streamed by a second goroutine.
func (d *downgrade) send(method, path string, head h2.Head, opts ConnOptions) error {
	w := d.u.w
	_, _ = w.WriteString(method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(path)
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = w.WriteString(d.pub.Authority)
	_, _ = w.WriteString("\r\n")
	for _, f := range head.Fields {
		if len(f.Name) == 0 || f.Name[0] == ':' || f.Name == "host" || f.Name == HeaderOrigProto ||
			connectionSpecific(f.Name) || (opts.OwnHeader != "" && equalFoldString([]byte(f.Name), opts.OwnHeader)) {
			continue
		}
		if f.Name == "te" {
			if f.Value == "trailers" {
				_, _ = w.WriteString("TE: trailers\r\n")
			}
			continue
		}
		writeField(w, f)
	}
	if l := ownLine(opts); l != nil {
		_, _ = w.Write(l)
	}
	if d.chunked {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	_, _ = w.WriteString("\r\n")
	switch {
	case !d.hasBody:
	case d.st.Done():
		// All of it arrived: sent now, and again on a retry, so it stays
		// in the stream's buffer until a response arrives.
		b, err := d.st.Peek(false)
		if err != nil && err != io.EOF {
			return fmt.Errorf("read request body: %w", err)
		}
		if !d.chunked && int64(len(b)) != d.contentLength {
			return fmt.Errorf("%w: %d body bytes for a content-length of %d", errBadUpgradedRequest, len(b), d.contentLength)
		}
		if d.chunked {
			writeChunk(w, b)
			d.writeTrailer(w)
		} else {
			_, _ = w.Write(b)
		}
	default:
		d.streamed = true
		go d.streamBody(d.u)
		return nil
	}
	return w.Flush()
}

// writeChunk writes b as one chunk (nothing when b is empty).
func writeChunk(w *bufio.Writer, b []byte) {
	if len(b) == 0 {
		return
	}
	var hex [16]byte
	_, _ = w.Write(strconv.AppendInt(hex[:0], int64(len(b)), 16))
	_, _ = w.WriteString("\r\n")
	_, _ = w.Write(b)
	_, _ = w.WriteString("\r\n")
}

// writeTrailer ends a chunked request body with the stream's trailers.
func (d *downgrade) writeTrailer(w *bufio.Writer) {
	_, _ = w.WriteString("0\r\n")
	for _, f := range d.st.Trailers() {
		if !connectionSpecific(f.Name) && f.Name != HeaderOrigProto {
			writeField(w, f)
		}
	}
	_, _ = w.WriteString("\r\n")
}

// streamBody copies the request body from the stream upstream as it
// arrives. When the stream fails, the upstream connection is closed: the
// request cannot end.
func (d *downgrade) streamBody(u *upstream) {
	st, w := d.st, u.w
	n := int64(0)
	var err error
	for {
		b, perr := st.Peek(false)
		if len(b) == 0 && perr == nil {
			if err = wrapWrite(w.Flush()); err != nil {
				break
			}
			b, perr = st.Peek(true)
		}
		if len(b) > 0 {
			n += int64(len(b))
			if d.chunked {
				writeChunk(w, b)
			} else if d.contentLength >= 0 && n > d.contentLength {
				perr = errH2BodyTooLong
			} else {
				_, _ = w.Write(b)
			}
			st.Discard(len(b))
		}
		if perr == io.EOF {
			if d.chunked {
				d.writeTrailer(w)
			} else if n != d.contentLength {
				err = io.ErrUnexpectedEOF
				break
			}
			err = wrapWrite(w.Flush())
			break
		}
		if perr != nil {
			err = perr
			break
		}
	}
	if err != nil && !isWriteError(err) {
		_ = u.nc.Close()
	}
	d.body <- err
}

// waitBody waits for a streamed request body, at most grace, then cuts it.
func (d *downgrade) waitBody(grace time.Duration) error {
	if !d.streamed {
		return nil
	}
	d.streamed = false
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-d.body:
		return err
	case <-t.C:
	}
	d.st.Cancel()
	_ = d.u.nc.Close()
	if err := <-d.body; err != nil {
		return fmt.Errorf("%w: %w", errBodyAbandoned, err)
	}
	return errBodyAbandoned
}

// readResponseHead reads response heads until a final one, forwarding
// interim ones on the stream.
func (d *downgrade) readResponseHead() (interim bool, err error) {
	u := d.u
	for {
		scanned := 0
		n, err := u.r.readHead(&scanned)
		if err != nil {
			return interim, err
		}
		if err := parseResponse(u.r.buffered()[:n], &d.resp, d.pub.GRPC); err != nil {
			return interim, err
		}
		if d.resp.status >= 200 {
			return interim, nil
		}
		d.fields = responseFields(d.fields[:0], &d.resp, &d.name)
		u.r.discard(n)
		interim = true
		if err := d.st.WriteInterim(d.fields); err != nil {
			return interim, fmt.Errorf("forward interim response: %w", err)
		}
	}
}

// relay sends the final response, buffered in d.u, on the stream.
func (d *downgrade) relay() {
	u, resp := d.u, &d.resp
	if !d.streamed {
		// The request body sent from the stream's buffer is done with.
		if b, _ := d.st.Peek(false); len(b) > 0 {
			d.st.Discard(len(b))
		}
	}
	d.status, d.grpcCode = resp.status, resp.grpcStatus
	d.rt.Metrics.Latency(resp.status, time.Since(d.pub.Start))
	fr := framingClose
	switch {
	case d.pub.method == http.MethodHead || resp.status == 204 || resp.status == 304 || resp.contentLength == 0:
		fr = framingNone
	case resp.chunked:
		fr = framingChunked
	case resp.contentLength >= 0:
		fr = framingLength
	}
	d.fields = responseFields(d.fields[:0], resp, &d.name)
	u.r.discard(len(resp.raw))
	d.responded = true

	var err error
	switch {
	case fr == framingNone:
		err = d.st.Respond(d.fields, nil, true)
	case fr == framingLength && int64(len(u.r.buffered())) >= resp.contentLength:
		// The whole body is here: one write with the head.
		n := int(resp.contentLength)
		err = d.st.Respond(d.fields, u.r.buffered()[:n], true)
		u.r.discard(n)
	default:
		err = d.st.Respond(d.fields, nil, false)
		if err == nil {
			err = d.copyBody(fr)
		}
	}
	if err != nil && !isWriteError(err) && !errors.Is(err, io.ErrUnexpectedEOF) && d.st.Err() != nil {
		err = wrapWrite(err) // the stream failed: the peer went away
	}
	bodyErr := d.waitBody(bodyGrace)
	reuse := err == nil && bodyErr == nil && fr != framingClose && !resp.close && !resp.http10 && len(u.r.buffered()) == 0
	d.release(reuse)
	if err != nil && isWriteError(err) {
		var reset *h2.StreamError
		if errors.As(d.st.Err(), &reset) {
			// The peer proxy reset the stream: its client cancelled.
			err = fmt.Errorf("peer proxy cancelled the request: %w: %w", context.Canceled, err)
		} else {
			err = fmt.Errorf("write response to peer: %w", err)
		}
	}
	k := Classify(d.status, d.grpcCode, err)
	d.rt.Metrics.Response(k)
	d.rt.Done(Outcome(k, err))
}

// copyBody copies the response body from upstream to the stream, then
// ends it (with the trailers of a chunked body).
func (d *downgrade) copyBody(fr framing) error {
	w := h2Writers.Get().(*bufio.Writer)
	w.Reset(writeErrorWriter{d.st})
	defer func() { w.Reset(nil); h2Writers.Put(w) }()
	u := d.u
	d.trailer = d.trailer[:0]
	var err error
	switch fr {
	case framingLength:
		err = copyN(w, u.r, d.resp.contentLength)
	case framingChunked:
		err = decodeChunked(w, u.r, func(name, value []byte) {
			if d.pub.GRPC && equalFold(name, "grpc-status") {
				if code, ok := parseGRPCStatus(value); ok {
					d.grpcCode = code
				}
			}
			switch kindOf(name) {
			case kOther, kContentType, kGRPCStatus:
				d.trailer = append(d.trailer, h2.Field{Name: lowerName(name, &d.name), Value: string(value)})
			}
		})
	case framingClose:
		err = copyUntilEOF(w, u.r)
	}
	if err == nil {
		err = wrapWrite(w.Flush())
	}
	if err == nil {
		err = wrapWrite(d.st.WriteTrailers(d.trailer))
	}
	return err
}

// writeErrorWriter marks the stream's errors as write errors.
type writeErrorWriter struct{ st *h2.Stream }

func (w writeErrorWriter) Write(p []byte) (int, error) {
	n, err := w.st.Write(p)
	return n, wrapWrite(err)
}

// release gives the upstream connection back to the pool, or closes it.
func (d *downgrade) release(reuse bool) {
	u := d.u
	if u == nil {
		return
	}
	d.u = nil
	d.ab.up.Store(nil)
	if reuse && !d.ab.cancelled.Load() {
		d.s.Pool.put(u)
		return
	}
	u.close()
}

// fail answers a request that could not be forwarded, or resets the stream
// when a response was already on its way.
func (d *downgrade) fail(h Handler, err error) {
	bodyErr := d.waitBody(bodyGrace)
	if bodyErr != nil && !errors.Is(bodyErr, errBodyAbandoned) && !isWriteError(bodyErr) {
		err = fmt.Errorf("read request body: %w", context.Canceled)
	}
	if d.st.Err() != nil {
		err = fmt.Errorf("peer proxy cancelled the request: %w", context.Canceled)
	}
	d.release(false)
	d.answer(h.Fail(&d.pub, &d.rt, err), 0)
}

// answer sends a proxy-generated response (status overrides r.Status when
// not 0).
func (d *downgrade) answer(r ErrorResponse, status int) {
	if d.responded {
		d.st.Cancel()
		return
	}
	if status != 0 {
		r.Status = status
	}
	d.fields = append(d.fields[:0], h2.Field{Name: ":status", Value: strconv.Itoa(r.Status)})
	for k, vv := range r.Header {
		name := lowerName([]byte(k), &d.name)
		for _, v := range vv {
			d.fields = append(d.fields, h2.Field{Name: name, Value: v})
		}
	}
	d.fields = append(d.fields, h2.Field{Name: "content-length", Value: strconv.Itoa(len(r.Body))})
	d.responded = true
	_ = d.st.Respond(d.fields, []byte(r.Body), true)
}

// responseFields renders an HTTP/1.1 response head for HTTP/2: :status,
// the fields that are not hop-by-hop with their names in lower case, then
// HeaderOrigProto.
func responseFields(dst []h2.Field, h *responseHead, scratch *[]byte) []h2.Field {
	raw := h.raw
	dst = append(dst, h2.Field{Name: ":status", Value: statusString(h.status)})
	for i := range h.fields {
		f := &h.fields[i]
		if f.hop {
			continue
		}
		dst = append(dst, h2.Field{Name: lowerName(f.name.of(raw), scratch), Value: string(f.value.of(raw))})
	}
	return append(dst, h2.Field{Name: HeaderOrigProto, Value: OrigProtoHTTP11})
}

// statusString interns the common status codes.
func statusString(code int) string {
	switch code {
	case 200:
		return "200"
	case 204:
		return "204"
	case 304:
		return "304"
	case 404:
		return "404"
	case 500:
		return "500"
	}
	return strconv.Itoa(code)
}
