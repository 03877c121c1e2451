package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkerd-go/linkerd/proxy/h2"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// The inbound half of HeaderOrigProto: a request a peer proxy received as
// HTTP/1.1 and carried over HTTP/2 goes to its endpoint as HTTP/1.1 again,
// on the same pooled connections as the fast path's, and the response goes
// back on the stream.

// errBadOrigProtoRequest is the answer to a request head that cannot be
// written as HTTP/1.1.
var errBadOrigProtoRequest = errors.New("h1: malformed request from peer proxy")

// OrigProtoIn is one request that arrived over HTTP/2 from a peer proxy,
// marked l5d-orig-proto, forwarded to its endpoint as HTTP/1.1 on the same
// pooled connections as the fast path's, its response going back on the
// stream marked the same way. The HTTP/2 server engine gets one from
// Server.OrigProtoIn when the chain marks a request OrigProto, runs its
// Forward as the chain's terminal, then calls Relay or Fail, then Release.
type OrigProtoIn struct {
	s    *Server
	st   *h2.Stream
	head h2.Head
	px   *pipeline.Exchange
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
	extra         []byte
	responded     bool // a response head went on the stream
	ab            *abort
}

var origProtoIns = sync.Pool{New: func() any { return &OrigProtoIn{body: make(chan error, 1)} }}

// OrigProtoIn returns the exchange of the request on st, whose head (from
// ReadHead) is head.
func (s *Server) OrigProtoIn(st *h2.Stream, head h2.Head) *OrigProtoIn {
	d := origProtoIns.Get().(*OrigProtoIn)
	d.s, d.st, d.head = s, st, head
	d.contentLength = -1
	return d
}

// Release ends the exchange's use of the stream (it does not close it) and
// recycles d.
func (d *OrigProtoIn) Release() {
	d.st.OnReset(nil)
	body := d.body
	*d = OrigProtoIn{body: body, fields: d.fields[:0], trailer: d.trailer[:0], name: d.name[:0], extra: d.extra[:0]}
	origProtoIns.Put(d)
}

// Forward implements pipeline.Forwarder: it sends the request to
// px.Endpoint as HTTP/1.1 and waits for the final response head.
func (d *OrigProtoIn) Forward(ctx context.Context, px *pipeline.Exchange) error {
	d.px = px
	method, path, ok := d.parseHead(d.head)
	if !ok {
		return &pipeline.StatusError{Status: http.StatusBadRequest, Err: errBadOrigProtoRequest}
	}
	// A reset (the peer proxy's client went away) ends the exchange. The
	// callback may run late, on the connection's goroutine: it only sees
	// its own abort.
	ab := &abort{}
	d.ab = ab
	d.st.OnReset(ab.cut)
	d.extra = renderFields(d.extra[:0], px.Fields)
	if err := d.roundTrip(ctx, method, path, d.head); err != nil {
		return err
	}
	px.Responded(d.resp.status)
	px.GRPCStatus = d.resp.grpcStatus
	return nil
}

// abort cancels one orig-proto exchange when its stream is reset.
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
func (d *OrigProtoIn) parseHead(head h2.Head) (method, path string, ok bool) {
	authority := ""
	for _, f := range head.Fields {
		switch f.Name {
		case ":method":
			method = f.Value
		case ":path":
			path = f.Value
		case ":authority":
			authority = f.Value
		case ":protocol":
			return method, path, false // extended CONNECT
		case "host":
			if authority == "" {
				authority = f.Value
			}
		case "content-length":
			n, ok := parseLength([]byte(f.Value))
			if !ok || (d.contentLength >= 0 && n != d.contentLength) {
				return method, path, false
			}
			d.contentLength = n
		}
	}
	if method == "" || method == http.MethodConnect || !isToken([]byte(method)) || path == "" || !validHost([]byte(authority)) {
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
func (d *OrigProtoIn) roundTrip(ctx context.Context, method, path string, head h2.Head) error {
	ep := d.px.Endpoint
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
		err := d.send(method, path, head)
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
func (d *OrigProtoIn) send(method, path string, head h2.Head) error {
	w := d.u.w
	authority, e := d.px.Authority, d.px.Edit
	if e != nil && e.Authority != "" {
		authority = e.Authority
	}
	if e != nil && e.Path != "" {
		path = e.Path
	}
	_, _ = w.WriteString(method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(path)
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = w.WriteString(strings.Map(noNewline, authority))
	_, _ = w.WriteString("\r\n")
	for _, f := range head.Fields {
		if f.Name == "te" {
			if f.Value == "trailers" {
				_, _ = w.WriteString("TE: trailers\r\n")
			}
			continue
		}
		if len(f.Name) == 0 || f.Name[0] == ':' || f.Name == "host" || f.Name == HeaderOrigProto ||
			pipeline.HopByHop(f.Name) || d.owned(f.Name) || e != nil && pipeline.Removes(e.Remove, f.Name) {
			continue
		}
		writeField(w, f)
	}
	_, _ = w.Write(d.extra)
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
			return fmt.Errorf("%w: %d body bytes for a content-length of %d", errBadOrigProtoRequest, len(b), d.contentLength)
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

// owned reports whether a field is one only the proxy sets.
func (d *OrigProtoIn) owned(name string) bool {
	for _, o := range d.s.Chain.OwnedFields() {
		if equalFoldString([]byte(name), o) {
			return true
		}
	}
	return false
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
func (d *OrigProtoIn) writeTrailer(w *bufio.Writer) {
	_, _ = w.WriteString("0\r\n")
	for _, f := range d.st.Trailers() {
		if !pipeline.HopByHop(f.Name) && f.Name != HeaderOrigProto {
			writeField(w, f)
		}
	}
	_, _ = w.WriteString("\r\n")
}

// streamBody copies the request body from the stream upstream as it
// arrives. When the stream fails, the upstream connection is closed: the
// request cannot end.
func (d *OrigProtoIn) streamBody(u *upstream) {
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
func (d *OrigProtoIn) waitBody(grace time.Duration) error {
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
func (d *OrigProtoIn) readResponseHead() (interim bool, err error) {
	u := d.u
	for {
		scanned := 0
		n, err := u.r.readHead(&scanned)
		if err != nil {
			return interim, err
		}
		if err := parseResponse(u.r.buffered()[:n], &d.resp, d.px.GRPC); err != nil {
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

// Relay sends the final response, buffered in d.u, on the stream, and
// finishes the exchange.
func (d *OrigProtoIn) Relay() {
	u, resp := d.u, &d.resp
	if !d.streamed {
		// The request body sent from the stream's buffer is done with.
		if b, _ := d.st.Peek(false); len(b) > 0 {
			d.st.Discard(len(b))
		}
	}
	fr := framingClose
	switch {
	case d.px.Method == http.MethodHead || resp.status == 204 || resp.status == 304 || resp.contentLength == 0:
		fr = framingNone
	case resp.chunked:
		fr = framingChunked
	case resp.contentLength >= 0:
		fr = framingLength
	}
	d.fields = responseFields(d.fields[:0], resp, &d.name)
	if e := d.px.Edit; e != nil {
		d.fields = h2.EditFields(d.fields[:0], d.fields, e)
	}
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
	d.px.Finish(err)
}

// copyBody copies the response body from upstream to the stream, then
// ends it (with the trailers of a chunked body).
func (d *OrigProtoIn) copyBody(fr framing) error {
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
			if d.px.GRPC && equalFold(name, "grpc-status") {
				if code, ok := parseGRPCStatus(value); ok {
					d.px.GRPCStatus = code
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
func (d *OrigProtoIn) release(reuse bool) {
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

// Fail answers a request that could not be forwarded (err from Forward),
// or resets the stream when a response was already on its way, and
// finishes the exchange.
func (d *OrigProtoIn) Fail(err error) {
	bodyErr := d.waitBody(bodyGrace)
	if bodyErr != nil && !errors.Is(bodyErr, errBodyAbandoned) && !isWriteError(bodyErr) {
		err = fmt.Errorf("read request body: %w", context.Canceled)
	}
	if d.st.Err() != nil {
		err = fmt.Errorf("peer proxy cancelled the request: %w", context.Canceled)
	}
	d.release(false)
	if d.responded {
		d.px.Err = err
		d.st.Cancel()
	} else {
		d.responded = true
		_ = h2.RespondAnswer(d.st, d.px.Fail(0, err), &d.fields)
	}
	d.px.Finish(err)
}

// responseFields renders an HTTP/1.1 response head for HTTP/2: :status,
// the fields that are not hop-by-hop with their names in lower case, then
// HeaderOrigProto.
func responseFields(dst []h2.Field, h *responseHead, scratch *[]byte) []h2.Field {
	raw := h.raw
	dst = append(dst, h2.Field{Name: ":status", Value: h2.StatusValue(h.status)})
	for i := range h.fields {
		f := &h.fields[i]
		if f.hop {
			continue
		}
		dst = append(dst, h2.Field{Name: lowerName(f.name.of(raw), scratch), Value: string(f.value.of(raw))})
	}
	return append(dst, h2.Field{Name: HeaderOrigProto, Value: OrigProtoHTTP11})
}
