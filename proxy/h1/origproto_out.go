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

	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/h2"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// The HeaderOrigProto names, here for short.
const (
	HeaderOrigProto = pipeline.HeaderOrigProto
	OrigProtoHTTP11 = pipeline.OrigProtoHTTP11
)

// h2State is a client connection's scratch space for orig-proto requests.
type h2State struct {
	fields  []h2.Field // request head
	trailer []h2.Field // request trailers of a chunked body
	name    []byte     // lower-casing buffer
}

// h2Writers buffer request bodies sent as DATA frames: one frame's worth.
var h2Writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

// roundTripH2 sends the request and returns the final response head.
// A request the peer did not process is sent once more, on a new stream
// (maybe a new connection), when its body can be sent again.
func (c *conn) roundTripH2(ctx context.Context, x *exchange, ep *balance.Endpoint) (h2.Head, error) {
	for attempt := 0; ; attempt++ {
		head, err := c.tryH2(ctx, x, ep)
		if err == nil {
			return head, nil
		}
		if attempt > 0 || x.streamed || x.interim || !errors.Is(err, h2.ErrUnprocessed) {
			return h2.Head{}, fmt.Errorf("exchange with %s over HTTP/2: %w", ep.Addr, err)
		}
		c.s.log().Debug("retrying request the peer did not process", "endpoint", ep.Addr, "err", err)
		c.release(x, false)
	}
}

// tryH2 opens a stream for the request, sends its body (or starts
// streaming it) and waits for the final response head, forwarding interim
// ones.
func (c *conn) tryH2(ctx context.Context, x *exchange, ep *balance.Endpoint) (h2.Head, error) {
	cc, err := c.s.H2.Get(ctx, ep)
	if err != nil {
		return h2.Head{}, err
	}
	var body []byte
	end := true
	switch {
	case x.body == bodyBuffered && !x.chunked:
		body = c.r.buffered()[x.headLen : x.headLen+x.bodyLen]
	case x.body != bodyNone:
		end = false
	}
	s, err := cc.Open(c.h2.fields, body, end)
	if err != nil {
		return h2.Head{}, err
	}
	x.s = s
	c.stream.Store(s)
	if c.closed.Load() {
		return h2.Head{}, errClientClosed
	}
	// The context ending (a route's timeout) stops the wait for the head.
	defer context.AfterFunc(ctx, func() {
		if pipeline.TimedOut(ctx) {
			s.Cancel()
		}
	})()
	switch {
	case x.body == bodyBuffered && x.chunked:
		if err := c.sendChunkedH2(s, c.r.buffered()[x.headLen:x.headLen+x.bodyLen]); err != nil {
			return h2.Head{}, err
		}
	case x.body == bodyStream:
		// The head leaves the buffer: the body goroutine reads after it.
		c.r.discard(x.headLen)
		x.headLen = 0
		if c.body == nil {
			c.body = make(chan error, 1)
		}
		x.streamed = true
		go c.streamBodyH2(s, x.chunked, x.remain)
	}
	for {
		head, err := s.ReadHead()
		if err != nil {
			return h2.Head{}, err
		}
		if head.Status >= 200 {
			return head, nil
		}
		if head.Status == http.StatusSwitchingProtocols {
			return h2.Head{}, errResponseUpgrade
		}
		writeH2ResponseHead(c.w, head, false, false)
		x.interim = true
		if err := c.w.Flush(); err != nil {
			return h2.Head{}, fmt.Errorf("forward interim response: %w", errClientClosed)
		}
	}
}

// sendChunkedH2 sends a chunked body that is entirely buffered, decoded,
// and ends the request with its trailers.
func (c *conn) sendChunkedH2(s *h2.Stream, body []byte) error {
	c.tmp = reader{buf: body, w: len(body), rd: eofReader{}}
	w := h2Writers.Get().(*bufio.Writer)
	w.Reset(s)
	defer func() { w.Reset(nil); h2Writers.Put(w) }()
	c.h2.trailer = c.h2.trailer[:0]
	err := decodeChunked(w, &c.tmp, c.collectTrailer)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = s.WriteTrailers(c.h2.trailer)
	}
	return err
}

// streamBodyH2 sends the rest of the request body on s, decoded when it
// is chunked, then ends the request. When the client side fails, the
// stream is cancelled: the request cannot end.
func (c *conn) streamBodyH2(s *h2.Stream, chunked bool, n int64) {
	w := h2Writers.Get().(*bufio.Writer)
	w.Reset(s)
	c.h2.trailer = c.h2.trailer[:0]
	var err error
	if chunked {
		err = decodeChunked(w, c.r, c.collectTrailer)
	} else {
		err = copyN(w, c.r, n)
	}
	if err == nil {
		err = wrapWrite(w.Flush())
	}
	if err == nil {
		err = wrapWrite(s.WriteTrailers(c.h2.trailer))
	}
	if err != nil && !isWriteError(err) {
		s.Cancel()
	}
	w.Reset(nil)
	h2Writers.Put(w)
	c.body <- err
}

// collectTrailer keeps a request trailer field for HTTP/2; fields that are
// not allowed in trailers are dropped.
func (c *conn) collectTrailer(name, value []byte) {
	switch kindOf(name) {
	case kOther, kContentType, kGRPCStatus:
	default:
		return
	}
	if equalFold(name, HeaderOrigProto) {
		return
	}
	c.h2.trailer = append(c.h2.trailer, h2.Field{Name: lowerName(name, &c.h2.name), Value: string(value)})
}

// relayH2 forwards the final response on x.s to the client as HTTP/1.1:
// with its Content-Length when it has one, chunked otherwise.
func (c *conn) relayH2(x *exchange, head h2.Head) bool {
	s := x.s
	length, lengthOK := int64(-1), true
	for _, f := range head.Fields {
		switch f.Name {
		case "content-length":
			n, ok := parseLength([]byte(f.Value))
			if !ok || (length >= 0 && n != length) {
				lengthOK = false
			}
			length = n
		case "grpc-status":
			if x.grpc && c.px.GRPCStatus < 0 {
				if code, ok := parseGRPCStatus([]byte(f.Value)); ok {
					c.px.GRPCStatus = code
				}
			}
		}
	}

	fr := framingChunked
	switch {
	case x.head || head.Status == http.StatusNoContent || head.Status == http.StatusNotModified:
		fr = framingNone
	case length >= 0 && lengthOK:
		fr = framingLength
	}
	keep := !x.close && !c.s.draining.Load()
	if e := c.px.Edit; e != nil {
		head.Fields = h2.EditFields(nil, head.Fields, e)
	}
	writeH2ResponseHead(c.w, head, fr == framingChunked, !keep)

	var err error
	switch fr {
	case framingLength:
		err = c.copyStream(s, length, false, x)
	case framingChunked:
		err = c.copyStream(s, -1, true, x)
	}
	if err == nil {
		err = wrapWrite(c.w.Flush())
	}
	if err == nil {
		// The client has the whole response; the stream must end too
		// (bodies of HEAD, 204 and 304 responses are dropped).
		err = c.awaitEnd(s, fr == framingNone)
	}
	bodyErr := c.waitBody(x, bodyGrace)
	c.release(x, false)
	return c.finish(x, err, bodyErr, keep)
}

// errH2BodyTooLong is a body longer than its content-length.
var errH2BodyTooLong = errors.New("h1: HTTP/2 body longer than its content-length")

// copyStream copies the response body from s to the client: n bytes
// (chunked false), or all of it chunk-encoded with its trailers.
func (c *conn) copyStream(s *h2.Stream, n int64, chunked bool, x *exchange) error {
	var hex [16]byte
	for {
		b, err := s.Peek(false)
		if len(b) == 0 && err == nil {
			// Nothing more yet: what the client has so far goes out first.
			if c.w.Buffered() > 0 {
				if err := c.w.Flush(); err != nil {
					return wrapWrite(err)
				}
			}
			b, err = s.Peek(true)
		}
		if len(b) > 0 {
			if !chunked && int64(len(b)) > n {
				return errH2BodyTooLong
			}
			if chunked {
				_, _ = c.w.Write(strconv.AppendInt(hex[:0], int64(len(b)), 16))
				_, _ = c.w.WriteString("\r\n")
			}
			if _, werr := c.w.Write(b); werr != nil {
				return wrapWrite(werr)
			}
			if chunked {
				_, _ = c.w.WriteString("\r\n")
			} else {
				n -= int64(len(b))
			}
			s.Discard(len(b))
		}
		switch {
		case err == io.EOF && chunked:
			_, _ = c.w.WriteString("0\r\n")
			for _, f := range s.Trailers() {
				if f.Name == HeaderOrigProto || pipeline.HopByHop(f.Name) {
					continue
				}
				if x.grpc && f.Name == "grpc-status" {
					if code, ok := parseGRPCStatus([]byte(f.Value)); ok {
						c.px.GRPCStatus = code
					}
				}
				writeField(c.w, f)
			}
			_, err := c.w.WriteString("\r\n")
			return wrapWrite(err)
		case err == io.EOF:
			if n > 0 {
				return io.ErrUnexpectedEOF
			}
			return nil
		case err != nil:
			return err
		case !chunked && n == 0:
			return nil // the end of the stream is checked by awaitEnd
		}
	}
}

// awaitEnd waits for the end of the response stream, whose body the client
// got; bytes beyond it are an error, unless drop is set.
func (c *conn) awaitEnd(s *h2.Stream, drop bool) error {
	for {
		b, err := s.Peek(true)
		if len(b) > 0 {
			if !drop {
				return errH2BodyTooLong
			}
			s.Discard(len(b))
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// requestFields appends the HTTP/2 head of the request h: the
// pseudo-header fields (the Host becomes :authority), every field that is
// not hop-by-hop with its name in lower case, TE: trailers when the client
// accepts trailers, the fields the chain adds, then HeaderOrigProto.
func requestFields(dst []h2.Field, h *requestHead, authority string, extra []pipeline.Field, scratch *[]byte) []h2.Field {
	raw := h.raw
	var path string
	if h.absolute {
		p := h.path.of(raw)
		if len(p) == 0 || p[0] != '/' {
			path = "/" + string(p)
		} else {
			path = string(p)
		}
	} else {
		path = string(h.target.of(raw))
	}
	dst = append(dst,
		h2.Field{Name: ":method", Value: methodString(h.method.of(raw))},
		h2.Field{Name: ":scheme", Value: "http"},
		h2.Field{Name: ":authority", Value: authority},
		h2.Field{Name: ":path", Value: path},
	)
	for i := range h.fields {
		f := &h.fields[i]
		name := f.name.of(raw)
		if f.hop || f.kind == kHost || equalFold(name, HeaderOrigProto) {
			continue
		}
		dst = append(dst, h2.Field{Name: lowerName(name, scratch), Value: string(f.value.of(raw))})
	}
	if h.teTrailers {
		dst = append(dst, h2.Field{Name: "te", Value: "trailers"})
	}
	for _, f := range extra {
		dst = append(dst, h2.Field{Name: lowerName([]byte(f.Name), scratch), Value: f.Value})
	}
	return append(dst, h2.Field{Name: HeaderOrigProto, Value: OrigProtoHTTP11})
}

// writeH2ResponseHead writes an HTTP/2 response head to the client as
// HTTP/1.1: its fields except HeaderOrigProto and connection-specific
// ones (and Content-Length when the body goes chunked), then the framing
// and connection fields of the client connection.
func writeH2ResponseHead(w *bufio.Writer, head h2.Head, chunked, close bool) {
	var num [8]byte
	_, _ = w.WriteString("HTTP/1.1 ")
	_, _ = w.Write(strconv.AppendInt(num[:0], int64(head.Status), 10))
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(http.StatusText(head.Status))
	_, _ = w.WriteString("\r\n")
	for _, f := range head.Fields {
		if f.Name == HeaderOrigProto || pipeline.HopByHop(f.Name) || (chunked && f.Name == "content-length") {
			continue
		}
		writeField(w, f)
	}
	if chunked {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if close {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	_, _ = w.WriteString("\r\n")
}

func writeField(w *bufio.Writer, f h2.Field) {
	_, _ = w.WriteString(f.Name)
	_, _ = w.WriteString(": ")
	_, _ = w.WriteString(f.Value)
	_, _ = w.WriteString("\r\n")
}

// lowerName returns name in lower case, without allocating for common names.
func lowerName(name []byte, scratch *[]byte) string {
	b := (*scratch)[:0]
	for _, c := range name {
		b = append(b, lower(c))
	}
	*scratch = b
	if s, ok := commonNames[string(b)]; ok {
		return s
	}
	return string(b)
}

// commonNames interns frequent header field names.
var commonNames = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{
		"accept", "accept-charset", "accept-encoding", "accept-language", "authorization",
		"cache-control", "content-encoding", "content-length", "content-type", "cookie",
		"date", "etag", "if-match", "if-modified-since", "if-none-match", "last-modified",
		"location", "origin", "pragma", "range", "referer", "server", "set-cookie",
		"trailer", "user-agent", "vary", "via", "x-forwarded-for", "x-forwarded-proto",
		"x-request-id", "grpc-status", "grpc-message", "grpc-timeout", "grpc-encoding",
		"grpc-accept-encoding", "l5d-dst-canonical", "l5d-client-id", "l5d-dst-override",
	} {
		m[n] = n
	}
	return m
}()
