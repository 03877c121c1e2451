// Package httpproxy serves the HTTP connections protocol detection handed
// over with the proxy's engines: HTTP/1.1 on the h1 fast path, HTTP/2 (h2c,
// gRPC, and HTTP/1.1 carried over HTTP/2 by a peer proxy) on the proxy's
// own HTTP/2 server, and the rare HTTP/1 cases the fast path hands off
// (Upgrade/WebSocket, CONNECT, Expect: 100-continue, HTTP/1.0) on net/http.
// Every request, whichever engine serves it, goes through the direction's
// pipeline.Chain.
package httpproxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/linkerd-go/linkerd/proxy/h1"
	"github.com/linkerd-go/linkerd/proxy/h2"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// Options configure a Server.
type Options struct {
	// Chain is the direction's request path.
	Chain *pipeline.Chain
	// Dialer connects to endpoints (mTLS to meshed ones).
	Dialer *transport.Dialer
	Logger *slog.Logger
	// IdleConnTimeout closes pooled upstream connections idle this long (default 20s).
	IdleConnTimeout time.Duration
	// H2Spread is how many HTTP/2 connections a peer gets at most while
	// they are all busy (see h2.PoolOptions.Spread).
	H2Spread int
	// Metrics and Direction name the counter of requests the engines
	// reject before the chain (malformed, over the limits):
	// <direction>_http_errors_total{error="malformed_request"|"header_too_large"}.
	Metrics   *metrics.Registry
	Direction string
}

// Server serves HTTP/1.1 and prior-knowledge HTTP/2 on connections handed to
// it one at a time (after protocol detection), with graceful shutdown.
type Server struct {
	chain *pipeline.Chain
	log   *slog.Logger

	// The client engines' connection pools.
	pool   *h1.Pool
	h2pool *h2.Pool

	fast  *h1.Server
	h2    h2Conns
	proxy *handoff // serves what the fast path hands off
	srv   *http.Server
	ln    *handoffListener
	done  chan struct{}
	// onReject counts a request or connection refused by an engine.
	onReject func(reason string)
}

// NewServer starts a server; connections arrive through ServeHTTP1 and ServeH2.
func NewServer(o Options) *Server {
	if o.IdleConnTimeout == 0 {
		o.IdleConnTimeout = 20 * time.Second
	}
	s := &Server{
		chain:  o.Chain,
		log:    o.Logger,
		pool:   h1.NewPool(h1.DefaultMaxIdlePerEndpoint, o.IdleConnTimeout),
		h2pool: h2.NewPool(h2.PoolOptions{Dial: o.Dialer.Dial, IdleTimeout: o.IdleConnTimeout, Spread: o.H2Spread}),
		ln:     newHandoffListener(),
		done:   make(chan struct{}),
	}
	s.proxy = newHandoff(o.Chain, o.Dialer, o.IdleConnTimeout, o.Logger)
	s.onReject = func(reason string) {
		if o.Metrics != nil {
			o.Metrics.Counter(o.Direction+"_http_errors_total", metrics.Labels{{Name: "error", Value: reason}}).Inc()
		}
	}
	s.fast = &h1.Server{Chain: o.Chain, Pool: s.pool, H2: s.h2pool, Dial: o.Dialer.Dial, Logger: o.Logger,
		OnReject: func(status int, _ error) {
			reason := h2.RejectMalformed
			if status == http.StatusRequestHeaderFieldsTooLarge {
				reason = h2.RejectHeaderTooLarge
			}
			s.onReject(reason)
		},
		HandOff: func(c net.Conn, pc *pipeline.Conn) error {
			if err := s.ln.handoff(&handoffConn{Conn: c, info: pc}); err != nil {
				_ = c.Close()
				return err
			}
			return nil
		}}
	s.srv = &http.Server{
		Handler:           s.proxy,
		IdleTimeout:       10 * time.Minute,
		ReadHeaderTimeout: h1.DefaultHeadTimeout,
		MaxHeaderBytes:    h1.MaxHeadBytes, // the hand-off's head was checked by the fast path already
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if hc, ok := c.(*handoffConn); ok {
				return context.WithValue(ctx, connKey{}, hc.info)
			}
			return ctx
		},
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(s.ln)
	}()
	return s
}

// ServeHTTP1 serves a connection detected as HTTP/1 on the fast path, which
// hands it to the net/http server from the first request it does not
// handle. It returns when the connection is closed or handed off, and owns
// c. Cancelling ctx closes the connection.
func (s *Server) ServeHTTP1(ctx context.Context, c net.Conn, pc *pipeline.Conn) {
	_ = s.fast.Serve(ctx, c, pc)
}

// CloseIdleConnections closes pooled upstream connections.
func (s *Server) CloseIdleConnections() {
	s.pool.CloseIdle()
	s.h2pool.CloseIdle()
	s.proxy.transport.CloseIdleConnections()
}

// Shutdown stops accepting connections, closes idle ones (HTTP/2 gets GOAWAY)
// and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	var fastErr, h2Err error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		fastErr = s.fast.Shutdown(ctx)
	}()
	go func() {
		defer wg.Done()
		h2Err = s.shutdownH2(ctx)
	}()
	err := s.srv.Shutdown(ctx)
	<-s.done
	wg.Wait()
	return errors.Join(err, fastErr, h2Err)
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.fast.Close()
	s.closeH2()
	err := s.srv.Close()
	<-s.done
	return err
}

type connKey struct{}

// connFrom returns the accepted connection a handed-off request arrived on.
func connFrom(ctx context.Context) *pipeline.Conn {
	if pc, ok := ctx.Value(connKey{}).(*pipeline.Conn); ok {
		return pc
	}
	return &pipeline.Conn{}
}

type handoffConn struct {
	net.Conn
	info *pipeline.Conn
}

// CloseWrite lets tunnels (Upgrade, CONNECT) half-close the client connection.
func (c *handoffConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// handoffListener is a net.Listener fed by the fast path's hand-offs.
type handoffListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoffListener() *handoffListener {
	return &handoffListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

var errServerClosed = errors.New("http server is shutting down")

func (l *handoffListener) handoff(c net.Conn) error {
	select {
	case l.conns <- c:
		return nil
	case <-l.closed:
		return errServerClosed
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return handoffAddr{} }

type handoffAddr struct{}

func (handoffAddr) Network() string { return "handoff" }
func (handoffAddr) String() string  { return "handoff" }

var _ net.Conn = (*handoffConn)(nil)
