package detect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// bufPool recycles the MaxPeek-sized read buffers used while detecting, so
// that a connection only keeps the (usually small) prefix it actually read.
var bufPool = sync.Pool{
	New: func() any {
		b := make([]byte, MaxPeek)
		return &b
	},
}

// aLongTimeAgo is a deadline in the past, used to interrupt a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// Detect reads from conn until Classify decides, and returns the result with
// a Conn that replays the bytes read before reading from conn again.
//
// Detection ends with Opaque when the client sends MaxPeek bytes without a
// decision, when the client closes its side or a read fails after some bytes
// arrived (the prefix read so far is kept), or when timeout elapses (then
// Result.TimedOut is set). A timeout <= 0 means no timeout. An EOF before any
// byte yields Opaque with an empty prefix.
//
// The error is non-nil only if a read fails with something other than EOF or
// a timeout before any byte arrived, or if ctx is done before detection
// finished (the error then wraps ctx's error). The returned Conn is nil
// whenever the error is non-nil; conn is not closed.
//
// Detect clears conn's read deadline before returning.
func Detect(ctx context.Context, conn net.Conn, timeout time.Duration) (Result, *Conn, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, nil, fmt.Errorf("detect protocol: %w", err)
	}
	if timeout > 0 {
		if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return Result{}, nil, fmt.Errorf("detect protocol: set read deadline: %w", err)
		}
	}

	// Cancelling ctx interrupts a blocked Read by moving the deadline into
	// the past. interrupted is closed once that has happened, so that the
	// deadline is not cleared before the callback has run.
	// A context that can never be cancelled needs no callback.
	var (
		stop        func() bool
		interrupted chan struct{}
	)
	if ctx.Done() != nil {
		interrupted = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			_ = conn.SetReadDeadline(aLongTimeAgo)
			close(interrupted)
		})
	}

	bp := bufPool.Get().(*[]byte)
	buf := *bp
	res, n, readErr := readAndClassify(conn, buf)

	if stop != nil && !stop() {
		<-interrupted // the callback ran or is running; let it finish
	}
	clearErr := conn.SetReadDeadline(time.Time{})

	var prefix []byte
	if n > 0 {
		prefix = make([]byte, n)
		copy(prefix, buf[:n])
	}
	bufPool.Put(bp)

	if readErr != nil && ctx.Err() != nil {
		return Result{}, nil, fmt.Errorf("detect protocol: %w", context.Cause(ctx))
	}
	if readErr != nil {
		switch {
		case errors.Is(readErr, os.ErrDeadlineExceeded):
			res = Result{Protocol: Opaque, TimedOut: true}
		case errors.Is(readErr, io.EOF) || n > 0:
			res = Result{Protocol: Opaque}
		default:
			return Result{}, nil, fmt.Errorf("detect protocol: read: %w", readErr)
		}
	}
	if clearErr != nil {
		return Result{}, nil, fmt.Errorf("detect protocol: clear read deadline: %w", clearErr)
	}
	return res, &Conn{Conn: conn, prefix: prefix}, nil
}

// readAndClassify reads into buf until the bytes classify, buf is full, or a
// read fails. It returns the number of bytes read; err is the read error
// that ended detection, if any.
func readAndClassify(conn net.Conn, buf []byte) (Result, int, error) {
	var c classifier
	n := 0
	// Every successful iteration either decides or grows n; zero-byte reads
	// without error are bounded separately so the loop always ends.
	emptyReads := 0
	for n < len(buf) {
		m, err := conn.Read(buf[n:])
		n += m
		if m > 0 {
			if res, done := c.classify(buf[:n]); done {
				return res, n, nil
			}
		}
		if err != nil {
			return Result{}, n, err
		}
		if m == 0 {
			emptyReads++
			if emptyReads >= 100 {
				return Result{}, n, io.ErrNoProgress
			}
		}
	}
	return Result{Protocol: Opaque}, n, nil
}

// Conn is a net.Conn whose first reads return bytes already read from it:
// those Detect consumed while classifying the connection, or (Replay) those
// an engine read before handing the connection on. It is the proxy's one
// replaying connection. It is not safe for concurrent Reads.
type Conn struct {
	net.Conn
	prefix []byte
}

// Replay returns c reading prefix first.
func Replay(c net.Conn, prefix []byte) *Conn { return &Conn{Conn: c, prefix: prefix} }

// Read returns buffered prefix bytes first, then reads from the underlying
// connection.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		if len(c.prefix) == 0 {
			c.prefix = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// WriteTo writes the buffered prefix and then copies the underlying
// connection to w, which lets io.Copy use splice/sendfile for the rest of
// the stream when both ends are TCP connections.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if len(c.prefix) > 0 {
		n, err := w.Write(c.prefix)
		total += int64(n)
		c.prefix = c.prefix[n:]
		if len(c.prefix) == 0 {
			c.prefix = nil
		}
		if err != nil {
			return total, err
		}
	}
	n, err := io.Copy(w, c.Conn)
	return total + n, err
}

// Peeked returns the buffered prefix bytes that have not been read yet. The
// slice aliases the Conn's buffer and must not be modified.
func (c *Conn) Peeked() []byte {
	return c.prefix
}

// Unwrap returns the underlying connection.
func (c *Conn) Unwrap() net.Conn {
	return c.Conn
}

// CloseWrite shuts down the writing side of the underlying connection if it
// supports half-close (like *net.TCPConn), and closes it otherwise.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
