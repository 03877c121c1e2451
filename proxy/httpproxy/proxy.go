package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/linkerd-go/linkerd/proxy/internal/bufpool"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// handoff serves, with net/http, the HTTP/1 requests the fast path does not
// handle (Upgrade/WebSocket, CONNECT, Expect: 100-continue, HTTP/1.0): the
// same chain runs inside its RoundTrip, with net/http's transport as the
// client engine, so these requests follow the same rules as every other.
type handoff struct {
	chain     *pipeline.Chain
	dialer    *transport.Dialer
	log       *slog.Logger
	rp        *httputil.ReverseProxy
	transport *http.Transport
}

func newHandoff(chain *pipeline.Chain, dialer *transport.Dialer, idle time.Duration, log *slog.Logger) *handoff {
	h := &handoff{chain: chain, dialer: dialer, log: log}
	h.transport = &http.Transport{
		Proxy:                 nil, // never an environment proxy: we are the proxy
		DialContext:           dialer.DialContext,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       idle,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	h.rp = &httputil.ReverseProxy{
		Rewrite:   h.rewrite,
		Transport: h,
		// Zero: bodies of unknown length (server-sent events, long polls)
		// are flushed as they come anyway.
		FlushInterval: 0,
		BufferPool:    bufferPool{},
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// Only reached when the response could not be relayed.
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return h
}

type exchangeKey struct{}

func (h *handoff) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &pipeline.Exchange{}
	x.Reset(connFrom(r.Context()), pipeline.HTTP1, time.Now())
	x.Method, x.Authority, x.Path = r.Method, r.Host, r.RequestURI
	x.GRPC = pipeline.IsGRPC(r.Header.Get("Content-Type"))
	x.Header = httpHeader(r.Header)
	for _, name := range h.chain.OwnedFields() {
		r.Header.Del(name)
	}
	if r.Method == http.MethodConnect {
		h.connect(w, r, x)
		return
	}
	// Stream request and response bodies at the same time (echo, bidi streams).
	_ = http.NewResponseController(w).EnableFullDuplex()
	h.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x)))
}

func (h *handoff) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.Host = pr.In.Host
	// Share the trailer map: the server fills it when the request body ends,
	// just before the transport writes the trailers upstream.
	pr.Out.Trailer = pr.In.Trailer
	// Rewrite drops forwarding headers; a transparent proxy passes them on untouched.
	for _, f := range [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v, ok := pr.In.Header[f]; ok {
			pr.Out.Header[f] = v
		}
	}
}

// RoundTrip runs the chain with net/http's transport as its terminal; a
// request the proxy answers itself gets its answer as the response.
func (h *handoff) RoundTrip(out *http.Request) (*http.Response, error) {
	x := out.Context().Value(exchangeKey{}).(*pipeline.Exchange)
	t := &transportForwarder{h: h, out: out}
	if err := h.chain.Serve(out.Context(), x, t); err != nil {
		if out.Context().Err() != nil {
			err = context.Canceled // the client went away
		}
		h.log.Debug("request failed", "method", x.Method, "authority", x.Authority, "path", x.Path, "err", err)
		resp := answerResponse(x.Fail(0, err), out)
		x.Finish(nil)
		return resp, nil
	}
	resp := t.resp
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The body is the upgraded stream; the response itself is complete.
		x.Finish(nil)
		return resp, nil
	}
	resp.Body = &trackedBody{ReadCloser: resp.Body, resp: resp, x: x}
	return resp, nil
}

// transportForwarder is the chain's terminal on the hand-off path.
type transportForwarder struct {
	h    *handoff
	out  *http.Request
	resp *http.Response
}

// Forward implements pipeline.Forwarder.
func (t *transportForwarder) Forward(ctx context.Context, x *pipeline.Exchange) error {
	t.out.URL.Host = x.Endpoint.Addr.String()
	e := x.Edit
	if e != nil {
		for _, name := range e.Remove {
			t.out.Header.Del(name)
		}
		if e.Authority != "" {
			t.out.Host = e.Authority
		}
		if e.Path != "" {
			if u, err := url.ParseRequestURI(e.Path); err == nil {
				t.out.URL.Path, t.out.URL.RawPath, t.out.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
			}
		}
	}
	for _, f := range x.Fields {
		t.out.Header.Set(f.Name, f.Value)
	}
	resp, err := t.h.transport.RoundTrip(t.out.WithContext(transport.WithEndpoint(ctx, x.Endpoint)))
	if err != nil {
		return err
	}
	if e != nil {
		for _, name := range e.RespRemove {
			resp.Header.Del(name)
		}
		for _, f := range e.RespFields {
			resp.Header.Add(f.Name, f.Value)
		}
	}
	t.resp = resp
	x.Responded(resp.StatusCode)
	if x.GRPC {
		if code, ok := pipeline.ParseGRPCStatus(resp.Header.Get("Grpc-Status")); ok {
			x.GRPCStatus = code
		}
	}
	return nil
}

// answerResponse is the proxy's answer a as the response to out.
func answerResponse(a *pipeline.Answer, out *http.Request) *http.Response {
	h := make(http.Header, len(a.Fields))
	for _, f := range a.Fields {
		h.Set(f.Name, strings.ReplaceAll(f.Value, "\n", " "))
	}
	h.Set("Content-Length", strconv.Itoa(len(a.Body)))
	return &http.Response{
		StatusCode: a.Status, Status: strconv.Itoa(a.Status) + " " + http.StatusText(a.Status),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(a.Body)), ContentLength: int64(len(a.Body)),
		Request: out,
	}
}

// trackedBody finishes the exchange when the response body ends.
type trackedBody struct {
	io.ReadCloser
	resp *http.Response
	x    *pipeline.Exchange
	once sync.Once
}

var errBodyClosed = errors.New("response body closed before its end")

func (b *trackedBody) finish(err error) {
	b.once.Do(func() {
		if b.x.GRPC {
			if code, ok := pipeline.ParseGRPCStatus(b.resp.Trailer.Get("Grpc-Status")); ok {
				b.x.GRPCStatus = code
			}
		}
		b.x.Finish(err)
	})
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.finish(nil)
	} else if err != nil {
		b.finish(b.cause(err))
	}
	return n, err
}

func (b *trackedBody) Close() error {
	err := b.ReadCloser.Close()
	b.finish(b.cause(errBodyClosed))
	return err
}

// cause marks err as the client's cancellation when the client went away
// (its request's context ended): not a failure of the server.
func (b *trackedBody) cause(err error) error {
	if b.resp.Request.Context().Err() != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", context.Canceled, err)
	}
	return err
}

// httpHeader reads an http.Header for the chain.
type httpHeader http.Header

func (h httpHeader) Get(name string) string { return http.Header(h).Get(name) }

// bufferPool gives the reverse proxy pooled copy buffers.
type bufferPool struct{}

func (bufferPool) Get() []byte  { return *bufpool.Get() }
func (bufferPool) Put(b []byte) { bufpool.Put(&b) }

var (
	_ http.Handler       = (*handoff)(nil)
	_ http.RoundTripper  = (*handoff)(nil)
	_ pipeline.Forwarder = (*transportForwarder)(nil)
)
