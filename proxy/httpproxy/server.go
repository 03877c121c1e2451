// Package httpproxy proxies HTTP/1.1, HTTP/2 (h2c) and gRPC on connections
// that protocol detection handed over: it picks an endpoint per request,
// records Linkerd's request/response metrics, classifies gRPC responses by
// grpc-status and answers proxy-generated errors with l5d-proxy-error.
package httpproxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkerd-go/linkerd/proxy/h1"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// ConnInfo describes the accepted connection an HTTP request arrived on.
type ConnInfo struct {
	Client  netip.AddrPort
	OrigDst netip.AddrPort
	// TLS is the accepted connection's TLS status (client_id when mTLS).
	TLS transport.TLS

	metricsCache sync.Map // metricsKey -> *metrics.HTTP
	lastMetrics  atomic.Pointer[lastMetrics]
}

type connInfoKey struct{}

// InfoFrom returns the ConnInfo of the connection a request arrived on.
func InfoFrom(ctx context.Context) *ConnInfo {
	info, _ := ctx.Value(connInfoKey{}).(*ConnInfo)
	return info
}

// Server serves HTTP/1.1 and prior-knowledge HTTP/2 on connections handed to
// it one at a time (after protocol detection), with graceful shutdown.
type Server struct {
	srv  *http.Server
	ln   *handoffListener
	done chan struct{}

	// The HTTP/1.1 fast path, when the handler is a *Proxy.
	proxy *Proxy
	fast  *h1.Server
	// h2 are the connections of ServeH2.
	h2 h2Conns
}

// NewServer starts a server for handler; conns arrive through ServeConn and
// ServeHTTP1. When handler is a *Proxy, ServeHTTP1 runs the HTTP/1.1 fast
// path (package h1) in front of the net/http server.
func NewServer(handler http.Handler, log *slog.Logger) *Server {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s := &Server{
		ln:   newHandoffListener(),
		done: make(chan struct{}),
		srv: &http.Server{
			Handler:     handler,
			Protocols:   protocols,
			IdleTimeout: 10 * time.Minute,
			// A slow or oversized head costs a bounded time and memory.
			ReadHeaderTimeout: h1.DefaultHeadTimeout,
			MaxHeaderBytes:    h1.MaxHeadBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				if hc, ok := c.(*handoffConn); ok {
					return context.WithValue(ctx, connInfoKey{}, hc.info)
				}
				return ctx
			},
		},
	}
	if p, ok := handler.(*Proxy); ok {
		s.proxy = p
		s.fast = &h1.Server{Pool: p.pool, H2: p.h2pool, Dial: p.dialer.Dial, Logger: log}
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(s.ln)
	}()
	return s
}

// ServeHTTP1 serves a connection detected as HTTP/1 on the fast path, which
// hands it to the net/http server (ServeConn) from the first request it
// does not handle. It returns when the connection is closed or handed off,
// and owns c. Cancelling ctx closes the connection.
func (s *Server) ServeHTTP1(ctx context.Context, c net.Conn, info *ConnInfo) {
	if s.fast == nil {
		if err := s.ServeConn(c, info); err != nil {
			_ = c.Close()
		}
		return
	}
	var opts h1.ConnOptions
	if s.proxy.direction == transport.Outbound {
		// Only this proxy names the destination (see fastConn.Route).
		opts.OwnHeader = HeaderDstCanonical
	}
	if s.proxy.direction == transport.Inbound {
		// As rewrite does: only a verified meshed client's identity reaches the application.
		opts.OwnHeader = HeaderClientID
		if info.TLS.Mode == "true" {
			opts.OwnValue = info.TLS.ID
		}
	}
	_ = s.fast.Serve(ctx, c, &fastConn{p: s.proxy, s: s, info: info}, opts)
}

// ServeConn hands c to the server. It returns an error when the server is shutting down.
func (s *Server) ServeConn(c net.Conn, info *ConnInfo) error {
	return s.ln.handoff(&handoffConn{Conn: c, info: info})
}

// Shutdown stops accepting connections, closes idle ones (HTTP/2 gets GOAWAY)
// and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	var fastErr, h2Err error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if s.fast != nil {
			fastErr = s.fast.Shutdown(ctx)
		}
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
	if s.fast != nil {
		s.fast.Close()
	}
	s.closeH2()
	err := s.srv.Close()
	<-s.done
	return err
}

type handoffConn struct {
	net.Conn
	info *ConnInfo
}

// CloseWrite lets tunnels (Upgrade, CONNECT) half-close the client connection.
func (c *handoffConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// handoffListener is a net.Listener fed by ServeConn.
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
