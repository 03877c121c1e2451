package httpproxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/linkerd-go/linkerd/proxy/h1"
	"github.com/linkerd-go/linkerd/proxy/h2"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// h2Conns tracks the connections served by ServeH2, for draining.
type h2Conns struct {
	mu       sync.Mutex
	conns    map[*h2.Conn]struct{}
	draining bool
}

// ServeH2 serves an HTTP/2 connection from a meshed peer proxy (inbound)
// with the proxy's own HTTP/2 server: requests marked l5d-orig-proto go to
// the application as HTTP/1.1 through the fast path's connection pool,
// the others through the reverse proxy, as net/http's server would hand
// them over. It returns when the connection ends, and owns c.
func (s *Server) ServeH2(ctx context.Context, c net.Conn, info *ConnInfo) {
	if s.fast == nil || s.proxy.direction != transport.Inbound {
		if err := s.ServeConn(c, info); err != nil {
			_ = c.Close()
		}
		return
	}
	opts := h1.ConnOptions{OwnHeader: HeaderClientID}
	if info.TLS.Mode == "true" {
		opts.OwnValue = info.TLS.ID
	}
	fc := &fastConn{p: s.proxy, s: s, info: info} // inbound: Route keeps no per-connection state
	handler := func(st *h2.Stream) {
		defer st.Close()
		head, err := st.ReadHead()
		if err != nil {
			return
		}
		if head.Value(h1.HeaderOrigProto) != "" {
			s.fast.ServeH2(ctx, st, head, fc, opts)
			return
		}
		s.bridge(ctx, st, head, info)
	}
	var cc *h2.Conn
	err := h2.ServeConn(c, h2.Options{}, handler, func(conn *h2.Conn) {
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
		s.proxy.log.Debug("HTTP/2 connection ended", "client", info.Client, "err", err)
	}
}

// shutdownH2 drains the ServeH2 connections until ctx ends.
func (s *Server) shutdownH2(ctx context.Context) error {
	s.h2.mu.Lock()
	s.h2.draining = true
	conns := make([]*h2.Conn, 0, len(s.h2.conns))
	for c := range s.h2.conns {
		conns = append(conns, c)
	}
	s.h2.mu.Unlock()
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
	s.h2.mu.Lock()
	s.h2.draining = true
	conns := make([]*h2.Conn, 0, len(s.h2.conns))
	for c := range s.h2.conns {
		conns = append(conns, c)
	}
	s.h2.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// bridge serves a request of a ServeH2 connection with the reverse proxy,
// as an http.Handler.
func (s *Server) bridge(ctx context.Context, st *h2.Stream, head h2.Head, info *ConnInfo) {
	ctx, cancel := context.WithCancel(context.WithValue(ctx, connInfoKey{}, info))
	defer cancel()
	st.OnReset(cancel)
	defer st.OnReset(nil)
	rw := &streamResponseWriter{st: st, header: make(http.Header)}
	req, err := requestFromStream(ctx, st, head, info)
	if err != nil {
		rw.header.Set("Content-Type", "text/plain; charset=utf-8")
		rw.WriteHeader(http.StatusBadRequest)
		_, _ = rw.Write([]byte(err.Error() + "\n"))
		rw.finish()
		return
	}
	rw.head = req.Method == http.MethodHead
	defer func() {
		if r := recover(); r != nil {
			if r != http.ErrAbortHandler {
				s.proxy.log.Error("panic serving HTTP/2 request", "panic", r)
			}
			st.Cancel()
		}
	}()
	s.proxy.ServeHTTP(rw, req)
	rw.finish()
}

var errBadRequest = errors.New("malformed HTTP/2 request")

// requestFromStream builds the http.Request of a stream's head.
func requestFromStream(ctx context.Context, st *h2.Stream, head h2.Head, info *ConnInfo) (*http.Request, error) {
	var method, path, authority, scheme string
	h := make(http.Header, len(head.Fields))
	var cookies []string
	for _, f := range head.Fields {
		switch f.Name {
		case ":method":
			method = f.Value
		case ":path":
			path = f.Value
		case ":authority":
			authority = f.Value
		case ":scheme":
			scheme = f.Value
		case "cookie":
			cookies = append(cookies, f.Value)
		default:
			if strings.HasPrefix(f.Name, ":") {
				return nil, errBadRequest // :protocol (extended CONNECT) and unknown pseudo-header fields
			}
			k := textproto.CanonicalMIMEHeaderKey(f.Name)
			h[k] = append(h[k], f.Value)
		}
	}
	if len(cookies) > 0 {
		h.Set("Cookie", strings.Join(cookies, "; "))
	}
	if authority == "" {
		authority = h.Get("Host")
	}
	h.Del("Host")
	if method == "" || (method != http.MethodConnect && path == "") {
		return nil, errBadRequest
	}
	var u *url.URL
	var err error
	switch {
	case method == http.MethodConnect:
		u = &url.URL{Host: authority}
	case path == "*":
		u = &url.URL{Path: "*"}
	default:
		if u, err = url.ParseRequestURI(path); err != nil {
			return nil, errBadRequest
		}
	}
	_ = scheme
	req := (&http.Request{
		Method: method, URL: u, Proto: "HTTP/2.0", ProtoMajor: 2, Header: h, Host: authority,
		RequestURI: path, RemoteAddr: info.Client.String(),
	}).WithContext(ctx)
	if v := h.Get("Content-Length"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, errBadRequest
		}
		req.ContentLength = n
	} else if !st.Done() || st.Buffered() > 0 {
		req.ContentLength = -1
	}
	if st.Done() && st.Buffered() == 0 {
		req.Body = http.NoBody
	} else {
		req.Body = &streamBody{st: st, req: req}
	}
	for _, v := range h.Values("Trailer") {
		for k := range strings.SplitSeq(v, ",") {
			if k = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k)); k != "" {
				if req.Trailer == nil {
					req.Trailer = make(http.Header)
				}
				req.Trailer[k] = nil
			}
		}
	}
	return req, nil
}

// streamBody is a request body read from a stream; at its end, the
// declared trailers are filled in.
type streamBody struct {
	st  *h2.Stream
	req *http.Request
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.st.Read(p)
	if err != nil && b.req.Trailer != nil {
		for _, f := range b.st.Trailers() {
			k := textproto.CanonicalMIMEHeaderKey(f.Name)
			if _, ok := b.req.Trailer[k]; ok {
				b.req.Trailer[k] = append(b.req.Trailer[k], f.Value)
			}
		}
	}
	return n, err
}

func (b *streamBody) Close() error { return nil }

// streamResponseWriter is the http.ResponseWriter of a bridged request. A
// response body is sent with its head when the handler does not flush
// before it returns.
type streamResponseWriter struct {
	st          *h2.Stream
	header      http.Header
	status      int
	head        bool // a HEAD request: no body
	sentHead    bool
	buf         []byte
	err         error
	fields      []h2.Field
	trailerKeys []string // declared when the head was written
}

// maxBuffered is how much body waits to be sent with the head or a flush.
const maxBuffered = 16 << 10

func (w *streamResponseWriter) Header() http.Header { return w.header }

func (w *streamResponseWriter) WriteHeader(code int) {
	if w.status != 0 || w.err != nil {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.err = w.st.WriteInterim(w.headFields(code))
		return
	}
	w.status = code
	for _, v := range w.header.Values("Trailer") {
		for k := range strings.SplitSeq(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				w.trailerKeys = append(w.trailerKeys, textproto.CanonicalMIMEHeaderKey(k))
			}
		}
	}
}

// headFields renders the response head.
func (w *streamResponseWriter) headFields(code int) []h2.Field {
	w.fields = append(w.fields[:0], h2.Field{Name: ":status", Value: strconv.Itoa(code)})
	for k, vv := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		name := strings.ToLower(k)
		switch name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			continue
		}
		for _, v := range vv {
			w.fields = append(w.fields, h2.Field{Name: name, Value: v})
		}
	}
	return w.fields
}

func (w *streamResponseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.head {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= maxBuffered {
		if err := w.FlushError(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// FlushError sends the head and the body written so far.
func (w *streamResponseWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if !w.sentHead {
		w.sentHead = true
		w.err = w.st.Respond(w.headFields(w.status), w.buf, false)
	} else if len(w.buf) > 0 {
		w.err = w.st.WriteData(w.buf, false)
	}
	w.buf = w.buf[:0]
	return w.err
}

// Flush implements http.Flusher.
func (w *streamResponseWriter) Flush() { _ = w.FlushError() }

// finish ends the response once the handler returned: what is left of the
// body, then the trailers.
func (w *streamResponseWriter) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		w.st.Cancel()
		return
	}
	var trailers []h2.Field
	for _, k := range w.trailerKeys {
		for _, v := range w.header[k] {
			trailers = append(trailers, h2.Field{Name: strings.ToLower(k), Value: v})
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vv {
				trailers = append(trailers, h2.Field{Name: strings.ToLower(name), Value: v})
			}
		}
	}
	end := len(trailers) == 0
	switch {
	case !w.sentHead:
		w.sentHead = true
		w.err = w.st.Respond(w.headFields(w.status), w.buf, end)
	case len(w.buf) > 0 || end:
		w.err = w.st.WriteData(w.buf, end)
	}
	if w.err == nil && !end {
		w.err = w.st.WriteTrailers(trailers)
	}
	if w.err != nil {
		w.st.Cancel()
	}
}

var (
	_ http.ResponseWriter = (*streamResponseWriter)(nil)
	_ http.Flusher        = (*streamResponseWriter)(nil)
)
