package h2

import (
	"fmt"
	"io"
	"sync"

	"golang.org/x/net/http2"
)

// Head is a received head: a response's status and regular fields, or a
// request's fields, pseudo-header fields first (Status 0).
type Head struct {
	Status int
	Fields []Field
}

// Value returns the first value of the field called name ("" when absent).
func (h Head) Value(name string) string {
	for _, f := range h.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// Stream is one request and its response; the proxy's end of it sends one
// and receives the other. Its methods are for one goroutine, except that
// the sending ones (WriteData, WriteTrailers) may run on a second one
// while the first receives, and Cancel on any.
type Stream struct {
	cc *Conn
	id uint32
	// changed is signalled, on cc.mu, when the receive side changes.
	changed sync.Cond
	head0   [1]Head // heads' first element, without allocating

	// Under cc.mu:
	sendWindow int64
	recvWindow int64 // what the peer may still send
	bodyLen    int64 // server: the request's content-length, -1 when absent
	received   int64 // server: body bytes received
	unacked    int64 // consumed, not yet returned to the peer
	heads      []Head
	final      bool // the final head arrived (a server's request head)
	buf        []byte
	off        int // read offset in buf
	trailer    []Field
	remoteDone bool  // the peer's side ended (or the stream failed)
	localDone  bool  // END_STREAM sent
	resetSent  bool  // no RST_STREAM needed any more
	stopped    error // the peer reset the stream after its side ended: sending fails
	err        error
	closed     bool
	onReset    func() // see OnReset
}

func newStream(cc *Conn) *Stream {
	s := &Stream{cc: cc, recvWindow: int64(cc.opts.StreamWindow), bodyLen: -1}
	s.changed.L = &cc.mu
	s.heads = s.head0[:0]
	return s
}

// OnReset sets f to be called, once and on the connection's goroutine,
// when the peer resets the stream or the connection fails before the
// stream is closed: a handler forwarding the request elsewhere can stop.
// f must not block.
// OnReset(nil) removes the callback.
func (s *Stream) OnReset(f func()) {
	cc := s.cc
	cc.mu.Lock()
	failed := f != nil && s.err != nil && !s.closed
	if !failed {
		s.onReset = f
	}
	cc.mu.Unlock()
	if failed {
		f()
	}
}

// takeOnResetLocked returns the reset callback, at most once; cc.mu is held.
func (s *Stream) takeOnResetLocked() func() {
	f := s.onReset
	s.onReset = nil
	return f
}

// ID returns the stream identifier.
func (s *Stream) ID() uint32 { return s.id }

// Conn returns the stream's connection.
func (s *Stream) Conn() *Conn { return s.cc }

// signal wakes the stream's reader; cc.mu is held.
func (s *Stream) signal() { s.changed.Broadcast() }

// failLocked records the stream's error (the first wins); cc.mu is held.
func (s *Stream) failLocked(err error) {
	if s.err == nil {
		s.err = err
	}
	s.signal()
}

// Respond sends the response head of a server stream with body; with end
// set the response ends after body. As in Conn.Open, a small body goes out
// with the head in one write.
func (s *Stream) Respond(fields []Field, body []byte, end bool) error {
	if err := s.sendErr(); err != nil {
		return err
	}
	s.cc.wmu.Lock()
	if err := s.writeHeadLocked(fields, body, end); err != nil {
		return fmt.Errorf("h2: send response: %w", err)
	}
	return nil
}

// WriteInterim sends an interim (1xx) response head.
func (s *Stream) WriteInterim(fields []Field) error {
	cc := s.cc
	cc.wmu.Lock()
	cc.mu.Lock()
	maxFrame := cc.maxFrame
	cc.mu.Unlock()
	err := cc.writeHeadersLocked(s.id, fields, false, maxFrame)
	if err == nil {
		err = cc.bw.Flush()
	}
	cc.wmu.Unlock()
	if err != nil {
		cc.failWrite(err)
		return fmt.Errorf("h2: send interim response: %w", err)
	}
	return nil
}

// takeWindow takes up to n bytes of send window, at most one frame; it
// waits for window when wait is set, else returns 0 when there is none.
func (s *Stream) takeWindow(n int, wait bool) int {
	cc := s.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for {
		if s.err != nil || s.stopped != nil || cc.err != nil {
			return 0
		}
		if avail := min(s.sendWindow, cc.sendWindow); avail > 0 {
			take := min(int64(n), avail, int64(cc.maxFrame))
			s.sendWindow -= take
			cc.sendWindow -= take
			return int(take)
		}
		if !wait {
			return 0
		}
		cc.cond.Wait()
	}
}

// writeErr is the error of a write that could not go on.
func (s *Stream) writeErr() error {
	cc := s.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.stopped != nil {
		return s.stopped
	}
	if cc.err != nil {
		return cc.err
	}
	return ErrCanceled
}

// WriteData sends p as body, then, with end set, ends the stream's sending
// side. It waits for flow-control window and returns when everything is
// written.
func (s *Stream) WriteData(p []byte, end bool) error {
	cc := s.cc
	if len(p) == 0 {
		if !end {
			return nil
		}
		if err := s.sendErr(); err != nil {
			return err
		}
	}
	for {
		n := 0
		if len(p) > 0 {
			if n = s.takeWindow(len(p), true); n == 0 {
				return s.writeErr()
			}
		}
		last := n == len(p)
		cc.wmu.Lock()
		err := cc.fr.WriteData(s.id, end && last, p[:n])
		if err == nil && last {
			err = cc.bw.Flush()
		}
		cc.wmu.Unlock()
		if err != nil {
			cc.failWrite(err)
			return fmt.Errorf("h2: send body: %w", err)
		}
		p = p[n:]
		if last {
			if end {
				cc.mu.Lock()
				s.localDone = true
				cc.mu.Unlock()
			}
			return nil
		}
	}
}

// Write implements io.Writer: body without ending the stream's sending side.
func (s *Stream) Write(p []byte) (int, error) {
	if err := s.WriteData(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteTrailers ends the stream's sending side with trailer fields (none:
// an empty DATA frame).
func (s *Stream) WriteTrailers(fields []Field) error {
	if len(fields) == 0 {
		return s.WriteData(nil, true)
	}
	cc := s.cc
	if err := s.sendErr(); err != nil {
		return err
	}
	cc.wmu.Lock()
	cc.mu.Lock()
	maxFrame := cc.maxFrame
	cc.mu.Unlock()
	err := cc.writeHeadersLocked(s.id, fields, true, maxFrame)
	if err == nil {
		err = cc.bw.Flush()
	}
	cc.wmu.Unlock()
	if err != nil {
		cc.failWrite(err)
		return fmt.Errorf("h2: send trailers: %w", err)
	}
	cc.mu.Lock()
	s.localDone = true
	cc.mu.Unlock()
	return nil
}

// sendErr is the error of the stream's sending side, nil while it can send.
func (s *Stream) sendErr() error {
	s.cc.mu.Lock()
	defer s.cc.mu.Unlock()
	switch {
	case s.err != nil:
		return s.err
	case s.stopped != nil:
		return s.stopped
	}
	return s.cc.err
}

// Err returns the stream's error, nil while it is fine.
func (s *Stream) Err() error {
	s.cc.mu.Lock()
	defer s.cc.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return s.cc.err
}

// Done reports whether the peer's side of the stream has ended.
func (s *Stream) Done() bool {
	s.cc.mu.Lock()
	defer s.cc.mu.Unlock()
	return s.remoteDone
}

// ReadHead waits for the next head received: on a client, interim (1xx)
// response heads, then the final one; on a server, the request head.
func (s *Stream) ReadHead() (Head, error) {
	cc := s.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for {
		if len(s.heads) > 0 {
			h := s.heads[0]
			s.heads = s.heads[1:]
			return h, nil
		}
		err := s.err
		if err == nil && s.remoteDone {
			err = fmt.Errorf("%w: stream ended without a head", errProtocol)
		}
		if err != nil {
			return Head{}, err
		}
		s.changed.Wait()
	}
}

// Peek returns the body bytes received and not yet discarded, waiting for
// some when wait is set. The slice stays valid until Discard. At the end
// of the body it returns io.EOF.
func (s *Stream) Peek(wait bool) ([]byte, error) {
	cc := s.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for {
		if s.off < len(s.buf) {
			// The read loop only appends: these bytes stay put until Discard.
			return s.buf[s.off:len(s.buf):len(s.buf)], nil
		}
		err := s.err
		if err == nil && s.remoteDone {
			err = io.EOF
		}
		if err != nil || !wait {
			return nil, err
		}
		s.changed.Wait()
	}
}

// Discard consumes n bytes that Peek returned.
func (s *Stream) Discard(n int) {
	cc := s.cc
	cc.mu.Lock()
	s.off += n
	if s.off >= len(s.buf) {
		s.buf, s.off = s.buf[:0], 0
	}
	cc.mu.Unlock()
	cc.returnWindow(s, n)
}

// Buffered returns how many body bytes Peek can return without waiting.
func (s *Stream) Buffered() int {
	s.cc.mu.Lock()
	defer s.cc.mu.Unlock()
	return len(s.buf) - s.off
}

// Read implements io.Reader over the received body; it returns io.EOF at
// its end.
func (s *Stream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := s.Peek(true)
	if len(b) == 0 {
		return 0, err
	}
	n := copy(p, b)
	s.Discard(n)
	return n, nil
}

// Trailers returns the trailer fields received, once the body ended.
func (s *Stream) Trailers() []Field {
	s.cc.mu.Lock()
	defer s.cc.mu.Unlock()
	return s.trailer
}

// Cancel fails the stream: waiting reads and writes return ErrCanceled,
// and Close resets it.
func (s *Stream) Cancel() {
	cc := s.cc
	cc.mu.Lock()
	s.failLocked(ErrCanceled)
	cc.cond.Broadcast()
	cc.mu.Unlock()
}

// Close ends the stream: when either side is not complete it is reset
// (CANCEL). The stream's slot and unread window go back to the connection.
// Close must be called once the stream is no longer used.
func (s *Stream) Close() {
	cc := s.cc
	cc.mu.Lock()
	if s.closed {
		cc.mu.Unlock()
		return
	}
	s.closed = true
	s.onReset = nil
	reset := !(s.localDone && s.remoteDone && s.err == nil) && !s.resetSent && cc.err == nil
	code := http2.ErrCodeCancel
	switch {
	case cc.server && s.localDone && s.err == nil:
		// A complete response: the client may stop sending its request.
		code = http2.ErrCodeNo
	case cc.server && s.remoteDone && s.err == nil:
		// The request was complete; the response was cut.
		code = http2.ErrCodeInternal
	}
	unread := len(s.buf) - s.off
	s.buf, s.off = nil, 0
	s.failLocked(ErrCanceled)
	s.remoteDone = true
	delete(cc.streams, s.id)
	cc.releaseLocked()
	cc.cond.Broadcast()
	cc.mu.Unlock()
	if reset {
		cc.writeControl(func() error { return cc.fr.WriteRSTStream(s.id, code) })
	}
	cc.returnWindow(nil, unread)
}
