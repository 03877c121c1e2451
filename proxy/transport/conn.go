package transport

import (
	"net"
	"sync"

	"github.com/linkerd-go/linkerd/proxy/metrics"
)

// MeteredConn counts the bytes a connection reads and writes into tcp_* metrics
// and records tcp_close_total when closed.
type MeteredConn struct {
	net.Conn
	m       *metrics.TCP
	once    sync.Once
	lastErr error // first read/write error, reported as errno on close
	errMu   sync.Mutex
}

// NewMeteredConn counts the connection as opened and returns it metered.
func NewMeteredConn(c net.Conn, m *metrics.TCP) *MeteredConn {
	m.Open()
	return &MeteredConn{Conn: c, m: m}
}

func (c *MeteredConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.m.AddRead(n)
	}
	if err != nil {
		c.noteErr(err)
	}
	return n, err
}

func (c *MeteredConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.m.AddWrite(n)
	}
	if err != nil {
		c.noteErr(err)
	}
	return n, err
}

func (c *MeteredConn) noteErr(err error) {
	if metrics.Errno(err) == "" {
		return
	}
	c.errMu.Lock()
	if c.lastErr == nil {
		c.lastErr = err
	}
	c.errMu.Unlock()
}

// Close closes the connection and records it in tcp_close_total once.
func (c *MeteredConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.errMu.Lock()
		e := c.lastErr
		c.errMu.Unlock()
		c.m.Close(e)
	})
	return err
}

// CloseWrite half-closes the connection when the underlying one supports it.
func (c *MeteredConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// Unwrap returns the underlying connection.
func (c *MeteredConn) Unwrap() net.Conn { return c.Conn }
