package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/h1"
	"github.com/linkerd-go/linkerd/proxy/h2"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// Header names the proxy reads or writes.
const (
	HeaderProxyError = "l5d-proxy-error"
	// HeaderClientID carries the meshed client's verified identity to the
	// application; a value sent by anyone else is removed.
	HeaderClientID = "l5d-client-id"
	// HeaderDstCanonical carries, on outbound requests, the canonical name of
	// the service they were resolved to.
	HeaderDstCanonical = "l5d-dst-canonical"
	// HeaderDstOverride names the service an ingress controller means (ingress mode).
	HeaderDstOverride = "l5d-dst-override"
)

// origProtoKey is h1.HeaderOrigProto as a key of an http.Header.
var origProtoKey = http.CanonicalHeaderKey(h1.HeaderOrigProto)

// Proxy is the http.Handler that forwards each request to an endpoint.
type Proxy struct {
	direction string
	resolver  discovery.Resolver
	dialer    *transport.Dialer
	metrics   *metrics.Registry
	log       *slog.Logger
	ingress   bool

	rp     *httputil.ReverseProxy
	h1, h2 *http.Transport
	// pool keeps the HTTP/1.1 fast path's idle upstream connections.
	pool *h1.Pool
	// h2pool, when set (outbound), carries HTTP/1.1 requests to meshed
	// peer proxies over HTTP/2 (see h1.HeaderOrigProto).
	h2pool *h2.Pool
}

// Options configure a Proxy.
type Options struct {
	Direction string // transport.Inbound or transport.Outbound
	Resolver  discovery.Resolver
	Dialer    *transport.Dialer
	Metrics   *metrics.Registry
	Logger    *slog.Logger
	// IdleConnTimeout closes pooled upstream connections idle this long (default 20s).
	IdleConnTimeout time.Duration
	// IngressMode routes requests by their l5d-dst-override header (when
	// set) rather than their Host: the proxy of an ingress controller.
	IngressMode bool
	// H2Upgrade (outbound) sends HTTP/1.1 requests to endpoints whose
	// proxies accept HTTP/2 (balance.Endpoint.H2, over mTLS) as HTTP/2,
	// multiplexed over one connection per peer, marked with
	// l5d-orig-proto; the peer's inbound side restores HTTP/1.1.
	H2Upgrade bool
	// H2Spread is how many HTTP/2 connections a peer gets at most while
	// they are all busy (see h2.PoolOptions.Spread).
	H2Spread int
}

// NewProxy returns a Proxy.
func NewProxy(o Options) *Proxy {
	if o.IdleConnTimeout == 0 {
		o.IdleConnTimeout = 20 * time.Second
	}
	p := &Proxy{direction: o.Direction, resolver: o.Resolver, dialer: o.Dialer, metrics: o.Metrics, log: o.Logger, ingress: o.IngressMode,
		pool: h1.NewPool(h1.DefaultMaxIdlePerEndpoint, o.IdleConnTimeout)}
	if o.H2Upgrade && o.Direction == transport.Outbound && o.Dialer.TLS != nil {
		p.h2pool = h2.NewPool(h2.PoolOptions{Dial: o.Dialer.Dial, IdleTimeout: o.IdleConnTimeout, Spread: o.H2Spread})
	}
	p.h1 = &http.Transport{
		Proxy:                 nil, // never an environment proxy: we are the proxy
		DialContext:           o.Dialer.DialContext,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       o.IdleConnTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	h2 := new(http.Protocols)
	h2.SetUnencryptedHTTP2(true)
	p.h2 = &http.Transport{
		Proxy:              nil,
		DialContext:        o.Dialer.DialContext,
		Protocols:          h2,
		IdleConnTimeout:    o.IdleConnTimeout,
		DisableCompression: true,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: roundTripper{p},
		// Zero: bodies of unknown length (gRPC, server-sent events, long
		// polls) are flushed as they come anyway; see modifyResponse for why
		// it must not be -1.
		FlushInterval:  0,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		BufferPool:     bufferPool{},
		ErrorLog:       slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	return p
}

// CloseIdleConnections closes pooled upstream connections.
func (p *Proxy) CloseIdleConnections() {
	p.h1.CloseIdleConnections()
	p.h2.CloseIdleConnections()
	p.pool.CloseIdle()
	if p.h2pool != nil {
		p.h2pool.CloseIdle()
	}
}

// upgrade reports whether HTTP/1.1 requests to ep go over HTTP/2: ep's
// proxy is meshed, reached with mTLS and said (by discovery) to accept it.
func (p *Proxy) upgrade(ep *balance.Endpoint) bool {
	return p.h2pool != nil && ep.H2 && ep.Identity != "" && ep.OpaqueTransportPort == 0
}

// reqState follows one request through the reverse proxy.
type reqState struct {
	start time.Time
	m     *metrics.HTTP
	ep    *balance.Endpoint
	done  func(error)
	h2    bool // arrived as HTTP/2: forward as HTTP/2
	// origProto: arrived (inbound) as HTTP/2 from a peer proxy that got it
	// as HTTP/1.1; forwarded as HTTP/1.1, the response marked the same way.
	origProto bool
	grpc      bool
	// canonical is the destination's canonical name (outbound), sent as l5d-dst-canonical.
	canonical string
	once      sync.Once
}

type stateKey struct{}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := InfoFrom(r.Context())
	if info == nil {
		info = &ConnInfo{}
	}
	dst := p.destination(r.Host, r.Header.Get(HeaderDstOverride), info.OrigDst)
	ep, done, err := p.pick(r.Context(), dst)
	if err != nil {
		p.writeError(w, r, http.StatusServiceUnavailable, err)
		return
	}
	st := &reqState{
		start: start,
		m:     p.metricsFor(info, r.Host, ep),
		ep:    ep,
		done:  done,
		h2:    r.ProtoMajor == 2,
		grpc:  isGRPC(r.Header),
	}
	if p.direction == transport.Outbound {
		st.canonical = discovery.CanonicalName(p.resolver, dst)
	}
	if st.h2 && p.direction == transport.Inbound {
		if _, ok := r.Header[origProtoKey]; ok {
			// Whatever version the peer names, the application gets HTTP/1.1.
			r.Header.Del(origProtoKey)
			st.h2, st.origProto = false, true
		}
	}
	st.m.Request()
	if r.Method == http.MethodConnect {
		p.connect(w, r, st)
		return
	}
	if r.ProtoMajor == 1 {
		// Stream request and response bodies at the same time (echo, bidi streams).
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	ctx := transport.WithEndpoint(context.WithValue(r.Context(), stateKey{}, st), ep)
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

// destination is what a request asks for: its authority and the address its
// connection was going to; in ingress mode l5d-dst-override names it instead.
func (p *Proxy) destination(host, override string, orig netip.AddrPort) discovery.Destination {
	if p.ingress && override != "" {
		host = override
	}
	return discovery.Destination{Authority: host, Addr: orig}
}

func (p *Proxy) pick(ctx context.Context, dst discovery.Destination) (*balance.Endpoint, func(error), error) {
	bal, err := p.resolver.Resolve(ctx, dst)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve %s: %w", dst.Authority, err)
	}
	ep, done, err := bal.Pick(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("no endpoint for %s: %w", dst.Authority, err)
	}
	return ep, done, nil
}

type metricsKey struct {
	authority string
	addr      string
	identity  string
}

// lastMetrics is the metrics a connection used last, checked before its
// cache without building a key.
type lastMetrics struct {
	authority string
	addr      netip.AddrPort
	identity  string
	m         *metrics.HTTP
}

// metricsFor returns the request metrics for an authority and endpoint,
// cached on the connection so steady traffic does no label work.
func (p *Proxy) metricsFor(info *ConnInfo, authority string, ep *balance.Endpoint) *metrics.HTTP {
	if l := info.lastMetrics.Load(); l != nil && l.addr == ep.Addr && l.authority == authority && l.identity == ep.Identity {
		return l.m
	}
	k := metricsKey{authority: authority, addr: ep.Addr.String(), identity: ep.Identity}
	if m, ok := info.metricsCache.Load(k); ok {
		info.lastMetrics.Store(&lastMetrics{authority: authority, addr: ep.Addr, identity: ep.Identity, m: m.(*metrics.HTTP)})
		return m.(*metrics.HTTP)
	}
	l := make(metrics.Labels, 0, 12+len(ep.Labels))
	l = append(l, metrics.Label{Name: "direction", Value: p.direction})
	if authority != "" {
		l = append(l, metrics.Label{Name: "authority", Value: authority})
	}
	if p.direction == transport.Inbound {
		l = append(l, transport.TargetLabels(info.OrigDst)...)
		l = append(l, info.TLS.AcceptLabels()...)
	} else {
		l = append(l, transport.TargetLabels(ep.Addr)...)
		tls := transport.NoIdentity(ep.NoTLSReason)
		if ep.Identity != "" {
			tls = transport.TLS{Mode: "true", ID: ep.Identity}
		}
		l = append(l, tls.ConnectLabels()...)
		l = append(l, ep.Labels...)
	}
	m := p.metrics.HTTP(l)
	info.metricsCache.Store(k, m)
	info.lastMetrics.Store(&lastMetrics{authority: authority, addr: ep.Addr, identity: ep.Identity, m: m})
	return m
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(stateKey{}).(*reqState)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = st.ep.Addr.String()
	pr.Out.Host = pr.In.Host
	// Share the trailer map: the server fills it when the request body ends,
	// just before the transport writes the trailers upstream.
	pr.Out.Trailer = pr.In.Trailer
	if p.direction == transport.Outbound {
		pr.Out.Header.Del(HeaderDstCanonical)
		if st.canonical != "" {
			pr.Out.Header.Set(HeaderDstCanonical, st.canonical)
		}
	}
	if p.direction == transport.Inbound {
		pr.Out.Header.Del(HeaderClientID)
		if info := InfoFrom(pr.In.Context()); info != nil && info.TLS.Mode == "true" && info.TLS.ID != "" {
			pr.Out.Header.Set(HeaderClientID, info.TLS.ID)
		}
	}
	// Rewrite drops forwarding headers; a transparent proxy passes them on untouched.
	for _, h := range [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v, ok := pr.In.Header[h]; ok {
			pr.Out.Header[h] = v
		}
	}
}

type roundTripper struct{ p *Proxy }

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if st, ok := r.Context().Value(stateKey{}).(*reqState); ok && st.h2 {
		return rt.p.h2.RoundTrip(r)
	}
	return rt.p.h1.RoundTrip(r)
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	st := resp.Request.Context().Value(stateKey{}).(*reqState)
	st.m.Latency(resp.StatusCode, time.Since(st.start))
	if resp.Body == http.NoBody {
		// The upstream ended the stream with its headers (a gRPC
		// "trailers-only" error). The length must be known, or the reverse
		// proxy flushes the headers on a timer, racing the end of the handler,
		// and an HTTP/2 client then sees headers and an empty end of stream:
		// gRPC reports "server closed the stream without sending trailers".
		resp.ContentLength = 0
	}
	if st.origProto {
		resp.Header.Set(origProtoKey, h1.OrigProtoHTTP11)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The body is the upgraded stream; the response itself is complete.
		st.finish(resp.StatusCode, resp.Header, nil, nil)
		return nil
	}
	resp.Body = &trackedBody{ReadCloser: resp.Body, resp: resp, st: st}
	return nil
}

// finish records response_total and tells the balancer how it went.
func (st *reqState) finish(status int, header, trailer http.Header, err error) {
	st.once.Do(func() {
		code := int32(-1)
		if st.grpc {
			if c, ok := grpcStatus(trailer, header); ok {
				code = int32(c)
			}
		}
		k := h1.Classify(status, code, err)
		st.m.Response(k)
		st.done(h1.Outcome(k, err))
	})
}

// trackedBody finishes the request's accounting when the response body ends.
type trackedBody struct {
	io.ReadCloser
	resp *http.Response
	st   *reqState
}

var errBodyClosed = errors.New("response body closed before its end")

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.st.finish(b.resp.StatusCode, b.resp.Header, b.resp.Trailer, nil)
	} else if err != nil {
		b.st.finish(b.resp.StatusCode, b.resp.Header, b.resp.Trailer, b.cause(err))
	}
	return n, err
}

func (b *trackedBody) Close() error {
	err := b.ReadCloser.Close()
	b.st.finish(b.resp.StatusCode, b.resp.Header, b.resp.Trailer, b.cause(errBodyClosed))
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

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	status := errorStatus(err)
	if r.Context().Err() != nil {
		// The client went away; nobody reads the answer, but account for it.
		err = context.Canceled
	}
	p.writeError(w, r, status, err)
}

// errorStatus is the status of the answer to a request that could not be
// forwarded to its endpoint: the client's fault's own status (400 for a
// malformed body), 504 on a timeout, 502 otherwise.
func errorStatus(err error) int {
	if se := (interface{ HTTPStatus() int })(nil); errors.As(err, &se) {
		return se.HTTPStatus()
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// writeError answers a request the proxy could not forward.
func (p *Proxy) writeError(w http.ResponseWriter, r *http.Request, status int, err error) {
	p.log.Debug("request failed", "direction", p.direction, "method", r.Method, "authority", r.Host, "path", r.URL.Path, "err", err)
	h := w.Header()
	status, body := errorResponse(h, status, err, isGRPC(r.Header))
	w.WriteHeader(status)
	if body != "" {
		_, _ = io.WriteString(w, body)
	}
	st, _ := r.Context().Value(stateKey{}).(*reqState)
	p.accountError(st, status, h, err)
}

// errorResponse sets in h the header fields of the answer to a request the
// proxy could not forward, and returns its status and body. gRPC clients
// get a trailers-only UNAVAILABLE response, others the HTTP status; both
// carry l5d-proxy-error with the reason. Both HTTP paths answer with it.
func errorResponse(h http.Header, status int, err error, grpc bool) (int, string) {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	h.Set(HeaderProxyError, msg)
	if grpc {
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", "14") // UNAVAILABLE
		h.Set("Grpc-Message", msg)
		return http.StatusOK, ""
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	return status, msg + "\n"
}

// accountError records a proxy-generated answer: as the request's response
// when it had an endpoint (st), as an HTTP error of the direction otherwise.
func (p *Proxy) accountError(st *reqState, status int, h http.Header, err error) {
	if st != nil {
		st.m.Latency(status, time.Since(st.start))
		st.finish(status, h, nil, err)
		return
	}
	reason := transport.ErrorReason(err)
	p.metrics.Counter(p.direction+"_http_errors_total",
		metrics.Labels{{Name: "error", Value: reason}}).Inc()
}

func isGRPC(h http.Header) bool {
	return strings.HasPrefix(h.Get("Content-Type"), "application/grpc")
}

func grpcStatus(trailer, header http.Header) (int, bool) {
	v := trailer.Get("Grpc-Status")
	if v == "" {
		v = header.Get("Grpc-Status") // trailers-only response
	}
	if v == "" {
		return 0, false
	}
	code, err := strconv.Atoi(v)
	if err != nil {
		return 0, false
	}
	return code, true
}

// bufferPool gives the reverse proxy pooled copy buffers.
type bufferPool struct{}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBufs.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBufs.Put(&b) }

var _ http.Handler = (*Proxy)(nil)
