// Package h2 is the proxy's HTTP/2 for connections between meshed proxies:
// the outbound side multiplexes requests to a peer, whatever client
// connection they came from, as streams over one connection (Pool,
// NewClientConn); the inbound side serves such connections (ServeConn).
//
// It speaks the part of HTTP/2 two proxies need between them: prior
// knowledge (the connection is already mTLS), flow control in both
// directions, SETTINGS, PING, GOAWAY and stream resets; no server push, no
// priorities. Frames are read and written with golang.org/x/net/http2's
// Framer and HPACK coder. The rest is written for the proxy's use: a
// connection's read loop fills per-stream buffers (the frames it owes the
// peer go through a small writer goroutine, so that it never blocks on a
// write); a request's own goroutine (on a server, a reused worker) writes
// its frames, head and a small body in one write, and reads its stream's
// buffer. net/http's HTTP/2 adds goroutine hand-offs and separate writes
// of a response's HEADERS and DATA that cost a mesh hop about as much as
// the rest of the proxying (see BenchmarkStream).
package h2

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Field is a header field. Names are lower case; pseudo-header fields
// (":status", ":path") come first.
type Field = hpack.HeaderField

// Flow-control and size defaults.
const (
	// DefaultStreamWindow is the receive window of each stream: how much of
	// a body the peer may send before it is read.
	DefaultStreamWindow = 1 << 20
	// DefaultConnWindow is the receive window of the whole connection.
	DefaultConnWindow = 16 << 20
	// DefaultMaxHeaderListSize bounds a received head (RFC 9113's size:
	// names, values and 32 bytes a field): an HTTP/1.1 head of the largest
	// size the proxy accepts (64 KiB, 100 fields) fits. A larger request
	// head is answered 431.
	DefaultMaxHeaderListSize = 96 << 10
	// DefaultMaxStreams is how many concurrent streams a server accepts.
	DefaultMaxStreams = 1000
	// DefaultResetBurst and DefaultResetRate bound how fast a client may
	// reset streams the server is still working on (HTTP/2 "rapid reset",
	// CVE-2023-44487): a token bucket of DefaultResetBurst resets refilled
	// at DefaultResetRate a second; past it the server sends GOAWAY
	// ENHANCE_YOUR_CALM and closes the connection.
	DefaultResetBurst = 200
	DefaultResetRate  = 100
	// maxQueuedControl bounds the frames the read loop queues for the peer
	// (PING and SETTINGS acknowledgements, resets, window updates): a peer
	// that sends them faster than it reads the answers is cut off.
	maxQueuedControl = 10000
	// initialMaxStreams is assumed of a server until its SETTINGS arrive.
	initialMaxStreams = 100
	// defaultPeerWindow and defaultMaxFrame are HTTP/2's initial values.
	defaultPeerWindow = 65535
	defaultMaxFrame   = 16384
	maxStreamID       = 1<<31 - 1
	bufSize           = 16 << 10
)

var (
	// ErrUnprocessed marks a request the peer did not process (GOAWAY below
	// its stream, REFUSED_STREAM, or a connection that could take no more
	// streams): it can be sent again, on another connection.
	ErrUnprocessed = errors.New("h2: request not processed by the peer")
	// ErrHeaderListTooLarge is the error of a request whose head is
	// larger than the peer accepts (SETTINGS_MAX_HEADER_LIST_SIZE): it is
	// not sent.
	ErrHeaderListTooLarge = errors.New("h2: header list larger than the peer accepts")
	// ErrCanceled is the error of a stream the proxy cancelled.
	ErrCanceled = errors.New("h2: stream cancelled")
	// ErrClosed is the error of streams on a connection closed by the proxy.
	ErrClosed   = errors.New("h2: connection closed")
	errProtocol = errors.New("h2: protocol error from peer")
)

// StreamError is a stream reset by the peer.
type StreamError struct{ Code http2.ErrCode }

func (e *StreamError) Error() string { return "h2: stream reset by peer: " + e.Code.String() }

// Is makes a REFUSED_STREAM reset match ErrUnprocessed.
func (e *StreamError) Is(target error) bool {
	return target == ErrUnprocessed && e.Code == http2.ErrCodeRefusedStream
}

// Options tune a Conn; zero values pick the defaults.
type Options struct {
	StreamWindow      uint32
	ConnWindow        uint32
	MaxHeaderListSize uint32
	// MaxStreams is how many concurrent streams a server accepts.
	MaxStreams uint32
	// ResetBurst and ResetRate (per second) limit the streams a client
	// may reset while the server still works on them (server only).
	ResetBurst int
	ResetRate  float64
	// OnReject, when set, is told (on the read loop: it must not block) of
	// each request or connection a server refused, with a reason:
	// RejectHeaderTooLarge (answered 431), RejectMalformed (the stream
	// reset), RejectTooManyResets or RejectProtocol (the connection ended
	// with GOAWAY).
	OnReject func(reason string)
}

// Reasons given to Options.OnReject.
const (
	RejectHeaderTooLarge = "header_too_large"
	RejectMalformed      = "malformed_request"
	RejectTooManyResets  = "too_many_resets"
	RejectProtocol       = "protocol_error"
)

// reject tells Options.OnReject of a refusal on a server.
func (cc *Conn) reject(reason string) {
	if cc.server && cc.opts.OnReject != nil {
		cc.opts.OnReject(reason)
	}
}

func (o *Options) fill() {
	if o.StreamWindow == 0 {
		o.StreamWindow = DefaultStreamWindow
	}
	if o.ConnWindow < o.StreamWindow {
		o.ConnWindow = max(o.StreamWindow, DefaultConnWindow)
	}
	if o.MaxHeaderListSize == 0 {
		o.MaxHeaderListSize = DefaultMaxHeaderListSize
	}
	if o.MaxStreams == 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.ResetBurst <= 0 {
		o.ResetBurst = DefaultResetBurst
	}
	if o.ResetRate <= 0 {
		o.ResetRate = DefaultResetRate
	}
}

// connError is a connection error (RFC 9113 §5.4.1): the connection ends
// with GOAWAY carrying code.
type connError struct {
	code http2.ErrCode
	msg  string
}

func (e *connError) Error() string { return fmt.Sprintf("h2: %s (%v)", e.msg, e.code) }

// Is makes every connection error a protocol error from the peer.
func (e *connError) Is(target error) bool { return target == errProtocol }

// ErrTooManyResets ends a connection whose client reset streams faster
// than the server allows (GOAWAY ENHANCE_YOUR_CALM).
var ErrTooManyResets = &connError{code: http2.ErrCodeEnhanceYourCalm, msg: "too many streams reset by the client"}

// Conn is an HTTP/2 connection, client or server. Its read loop runs
// until the connection fails or is closed.
type Conn struct {
	nc     net.Conn
	opts   Options
	server bool
	fr     *http2.Framer
	bw     *bufio.Writer

	// wmu serializes frame writes, the HPACK encoder and, on a client,
	// stream creation (stream IDs must go out in increasing order).
	wmu  sync.Mutex
	henc *hpack.Encoder
	hbuf bytes.Buffer

	mu   sync.Mutex
	cond sync.Cond // on mu: send windows grew, or a stream or the connection failed
	// streams are the open streams by ID.
	streams map[uint32]*Stream
	nextID  uint32 // client: the next stream's ID
	lastID  uint32 // server: the highest stream ID the client opened
	// reserved counts the streams open, or (client) about to open (Reserve).
	reserved   int
	maxStreams int // client: the server's limit
	// Send side: the peer's windows and limits.
	sendWindow     int64
	peerInitWindow int64
	peerMaxHeaders uint32 // the peer's SETTINGS_MAX_HEADER_LIST_SIZE, 0 when unlimited
	maxFrame       int
	// Receive side: bytes of the connection window consumed and not yet
	// returned to the peer, and what the peer may still send.
	recvUnacked int64
	recvWindow  int64
	// Server: the token bucket of client resets (see Options.ResetBurst).
	resetTokens float64
	resetAt     time.Time
	goAway      bool  // client: the peer takes no new streams; server: GOAWAY sent
	retiring    bool  // client: the pool closes it (idle): no new streams
	err         error // why the connection ended; set once
	idleSince   time.Time
	idle        chan struct{} // server draining: signalled when the last stream ends

	// Frames the read loop sends (acknowledgements, resets, window updates)
	// go through ctrlQ to the control writer: the read loop never blocks on
	// the connection's writes, or two peers both writing could wait for
	// each other to read.
	ctrlMu       sync.Mutex
	ctrlQ        []func() error
	ctrlOverflow bool // more than maxQueuedControl frames queued
	writeClosed  bool // under wmu: our side is closed (retire), nothing more is written
	ctrlWake     chan struct{}

	handler  func(*Stream) // server: runs each request, on a worker goroutine
	work     chan *Stream  // server: to idle workers
	onClose  func(*Conn)   // called once, when the read loop ends
	readDone chan struct{}
	handlers sync.WaitGroup // server: running handlers
}

// NewClientConn starts HTTP/2 as a client on nc (the connection preface
// and SETTINGS) and its read loop. onClose, when not nil, is called once
// when the connection ends. The Conn owns nc.
func NewClientConn(nc net.Conn, opts Options, onClose func(*Conn)) (*Conn, error) {
	cc := newConn(nc, opts, false)
	cc.onClose = onClose
	cc.maxStreams = initialMaxStreams
	cc.nextID = 1
	_, err := cc.bw.WriteString(http2.ClientPreface)
	if err == nil {
		err = cc.fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: cc.opts.StreamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: cc.opts.MaxHeaderListSize},
		)
	}
	if err = cc.startLocked(err); err != nil {
		return nil, err
	}
	go cc.controlWriter()
	go cc.readLoop()
	return cc, nil
}

// ServeConn serves HTTP/2 on nc, whose first bytes are a client's
// connection preface, until the connection ends; handler runs each
// request on its own goroutine and must finish the stream (see
// Stream.Close). started, when not nil, gets the Conn before any request
// is served (for Shutdown). ServeConn owns nc; it returns once every
// handler has returned.
func ServeConn(nc net.Conn, opts Options, handler func(*Stream), started func(*Conn)) error {
	cc := newConn(nc, opts, true)
	cc.handler = handler
	cc.work = make(chan *Stream)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(nc, preface); err != nil || string(preface) != http2.ClientPreface {
		nc.Close()
		return fmt.Errorf("%w: bad connection preface", errProtocol)
	}
	err := cc.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: cc.opts.MaxStreams},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: cc.opts.StreamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: cc.opts.MaxHeaderListSize},
	)
	if err = cc.startLocked(err); err != nil {
		return err
	}
	if started != nil {
		started(cc)
	}
	go cc.controlWriter()
	cc.readLoop()
	cc.handlers.Wait()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if errors.Is(cc.err, ErrClosed) || errors.Is(cc.err, io.ErrUnexpectedEOF) {
		return nil
	}
	return cc.err
}

func newConn(nc net.Conn, opts Options, server bool) *Conn {
	opts.fill()
	cc := &Conn{
		nc:             nc,
		opts:           opts,
		server:         server,
		bw:             bufio.NewWriterSize(nc, bufSize),
		streams:        make(map[uint32]*Stream),
		sendWindow:     defaultPeerWindow,
		peerInitWindow: defaultPeerWindow,
		maxFrame:       defaultMaxFrame,
		recvWindow:     int64(opts.ConnWindow),
		resetTokens:    float64(opts.ResetBurst),
		idleSince:      time.Now(),
		readDone:       make(chan struct{}),
		ctrlWake:       make(chan struct{}, 1),
	}
	cc.cond.L = &cc.mu
	cc.fr = http2.NewFramer(cc.bw, bufio.NewReaderSize(nc, bufSize))
	cc.fr.SetReuseFrames()
	cc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	cc.fr.MaxHeaderListSize = opts.MaxHeaderListSize
	cc.henc = hpack.NewEncoder(&cc.hbuf)
	return cc
}

// startLocked finishes the first flight (after the SETTINGS written with
// error err): a connection window update, then a flush.
func (cc *Conn) startLocked(err error) error {
	if err == nil && cc.opts.ConnWindow > defaultPeerWindow {
		err = cc.fr.WriteWindowUpdate(0, cc.opts.ConnWindow-defaultPeerWindow)
	}
	if err == nil {
		err = cc.bw.Flush()
	}
	if err != nil {
		cc.nc.Close()
		return fmt.Errorf("h2: start connection: %w", err)
	}
	return nil
}

// Reserve claims a stream slot on a client connection; it fails when the
// connection is closed, going away, or at the peer's stream limit. A
// reservation is given back by Release or used by Open.
func (cc *Conn) Reserve() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.canTakeLocked(1) {
		return false
	}
	cc.reserved++
	return true
}

// canTakeLocked reports whether n more client streams may be reserved.
func (cc *Conn) canTakeLocked(n int) bool {
	return cc.err == nil && !cc.goAway && !cc.retiring && cc.reserved+n <= cc.maxStreams && cc.nextID+2*uint32(cc.reserved+n) < maxStreamID
}

// Release gives back a reservation that was not used.
func (cc *Conn) Release() {
	cc.mu.Lock()
	cc.releaseLocked()
	cc.mu.Unlock()
}

func (cc *Conn) releaseLocked() {
	cc.reserved--
	if cc.reserved == 0 {
		cc.idleSince = time.Now()
		if cc.idle != nil {
			close(cc.idle)
			cc.idle = nil
		}
		if !cc.server && cc.goAway {
			cc.nc.Close() // the server is waiting for it; the read loop ends
		}
	}
}

// Streams returns how many streams are open or reserved.
func (cc *Conn) Streams() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.reserved
}

// usable reports whether a client connection can take new streams at all.
func (cc *Conn) usable() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.canTakeLocked(0)
}

// Err returns why the connection ended, nil while it is up.
func (cc *Conn) Err() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err
}

// Done is closed when the connection's read loop has ended.
func (cc *Conn) Done() <-chan struct{} { return cc.readDone }

// Close sends GOAWAY and closes the connection; open streams fail with ErrClosed.
func (cc *Conn) Close() error {
	cc.mu.Lock()
	last := cc.lastID
	cc.mu.Unlock()
	cc.wmu.Lock()
	if !cc.writeClosed {
		_ = cc.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_ = cc.fr.WriteGoAway(last, http2.ErrCodeNo, nil)
		_ = cc.bw.Flush()
	}
	cc.wmu.Unlock()
	cc.fail(ErrClosed)
	err := cc.nc.Close()
	<-cc.readDone
	if errors.Is(err, net.ErrClosed) {
		err = nil // the read loop closed it already
	}
	return err
}

// Shutdown drains a server connection: GOAWAY tells the client to open no
// more streams, the open ones finish, then the connection closes. It
// returns when it is closed, or with ctx's error when ctx ends first (the
// connection is then closed at once).
func (cc *Conn) Shutdown(ctx context.Context) error {
	cc.mu.Lock()
	cc.goAway = true
	last := cc.lastID
	var idle chan struct{}
	if cc.reserved > 0 {
		idle = make(chan struct{})
		cc.idle = idle
	}
	cc.mu.Unlock()
	cc.writeControl(func() error { return cc.fr.WriteGoAway(last, http2.ErrCodeNo, nil) })
	if idle != nil {
		select {
		case <-idle:
		case <-cc.readDone:
		case <-ctx.Done():
			cc.Close()
			return ctx.Err()
		}
	}
	// The client closes a connection going away once its streams are done;
	// closing first could reset it before it read the last responses.
	t := time.NewTimer(goAwayLinger)
	defer t.Stop()
	select {
	case <-cc.readDone:
	case <-t.C:
	case <-ctx.Done():
	}
	return cc.Close()
}

// goAwayLinger is how long a draining server waits for the client to
// close, and a client closing an idle connection for the server to.
const goAwayLinger = time.Second

// retireIfIdleLocked marks a client connection without streams for at
// least idle (or, when it has none, that cannot take new ones) as
// retiring: no stream is opened on it any more. It reports whether it
// did; cc.mu is held.
func (cc *Conn) retireIfIdleLocked(now time.Time, idle time.Duration) bool {
	if cc.reserved > 0 || cc.retiring {
		return false
	}
	if now.Sub(cc.idleSince) < idle && cc.canTakeLocked(0) {
		return false
	}
	cc.retiring = true
	return true
}

// retire closes a retiring client connection gracefully: GOAWAY, then the
// end of our side (TLS close_notify, FIN), then, for at most linger, the
// read loop goes on until the peer closes its side. Neither side sees a
// reset: the server counts a clean close, not a connection error.
func (cc *Conn) retire(linger time.Duration) {
	cc.wmu.Lock()
	_ = cc.nc.SetWriteDeadline(time.Now().Add(linger))
	err := cc.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	if err == nil {
		err = cc.bw.Flush()
	}
	halfClosed := false
	if cw, ok := cc.nc.(interface{ CloseWrite() error }); ok && err == nil {
		halfClosed = cw.CloseWrite() == nil
	}
	cc.writeClosed = halfClosed
	cc.wmu.Unlock()
	if halfClosed {
		t := time.NewTimer(linger)
		select {
		case <-cc.readDone:
		case <-t.C:
		}
		t.Stop()
	}
	cc.Close()
}

// fail ends the connection with err (the first error wins) and wakes every stream.
func (cc *Conn) fail(err error) {
	var resets []func()
	cc.mu.Lock()
	if cc.err == nil {
		cc.err = err
	}
	err = cc.err
	for _, s := range cc.streams {
		if s.remoteDone && s.err == nil {
			// The peer's side is complete and stays readable; ours is cut.
			if s.stopped == nil {
				s.stopped = err
			}
			continue
		}
		s.failLocked(err)
		if f := s.takeOnResetLocked(); f != nil {
			resets = append(resets, f)
		}
	}
	cc.cond.Broadcast()
	cc.mu.Unlock()
	for _, f := range resets {
		f()
	}
}

// failWrite ends the connection after a failed write.
func (cc *Conn) failWrite(err error) {
	cc.fail(fmt.Errorf("h2: write: %w", err))
	cc.nc.Close()
}

// Open starts a stream on a client connection with the request head
// fields (pseudo-header fields first) and body; with end set the request
// ends after body. As much of body as the peer's windows allow goes out
// with the head, the rest before Open returns. Open uses a reservation
// (see Reserve), even when it fails. An error wrapping ErrUnprocessed
// means the request never reached the peer.
func (cc *Conn) Open(fields []Field, body []byte, end bool) (*Stream, error) {
	size := uint32(0)
	for _, f := range fields {
		size += f.Size()
	}
	s := newStream(cc)
	cc.wmu.Lock()
	cc.mu.Lock()
	if limit := cc.peerMaxHeaders; limit > 0 && size > limit {
		// The peer would refuse it, maybe by closing the connection, which
		// other requests share.
		cc.releaseLocked()
		cc.mu.Unlock()
		cc.wmu.Unlock()
		return nil, fmt.Errorf("h2: open stream: %w: %d bytes, the peer takes %d", ErrHeaderListTooLarge, size, limit)
	}
	if cc.err != nil || cc.goAway || cc.nextID >= maxStreamID {
		err := cc.err
		cc.releaseLocked()
		cc.mu.Unlock()
		cc.wmu.Unlock()
		if err == nil {
			return nil, fmt.Errorf("h2: open stream: %w", ErrUnprocessed)
		}
		return nil, fmt.Errorf("h2: open stream: %w: %w", ErrUnprocessed, err)
	}
	s.id = cc.nextID
	cc.nextID += 2
	s.sendWindow = cc.peerInitWindow
	cc.streams[s.id] = s
	cc.mu.Unlock()
	if err := s.writeHeadLocked(fields, body, end); err != nil {
		s.Close()
		return nil, fmt.Errorf("h2: send request: %w", err)
	}
	return s, nil
}

// writeHeadLocked writes the stream's head and as much of body as the
// windows allow, in one flush, then the rest of body; wmu is held and
// released.
func (s *Stream) writeHeadLocked(fields []Field, body []byte, end bool) error {
	cc := s.cc
	cc.mu.Lock()
	maxFrame := cc.maxFrame
	cc.mu.Unlock()
	sentEnd := end && len(body) == 0
	err := cc.writeHeadersLocked(s.id, fields, sentEnd, maxFrame)
	for err == nil && len(body) > 0 {
		n := s.takeWindow(len(body), false)
		if n == 0 {
			break
		}
		last := n == len(body)
		err = cc.fr.WriteData(s.id, end && last, body[:n])
		body = body[n:]
		sentEnd = last && end
	}
	if err == nil {
		err = cc.bw.Flush()
	}
	cc.wmu.Unlock()
	if err != nil {
		cc.failWrite(err)
		return err
	}
	if sentEnd {
		cc.mu.Lock()
		s.localDone = true
		cc.mu.Unlock()
		return nil
	}
	if len(body) > 0 || end {
		return s.WriteData(body, end)
	}
	return nil
}

// writeHeadersLocked encodes fields and writes them as HEADERS and
// CONTINUATION frames; wmu is held.
func (cc *Conn) writeHeadersLocked(id uint32, fields []Field, end bool, maxFrame int) error {
	cc.hbuf.Reset()
	for _, f := range fields {
		if err := cc.henc.WriteField(f); err != nil {
			return err
		}
	}
	block := cc.hbuf.Bytes()
	first := true
	for first || len(block) > 0 {
		chunk := block
		if len(chunk) > maxFrame {
			chunk = chunk[:maxFrame]
		}
		block = block[len(chunk):]
		var err error
		if first {
			err = cc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: chunk, EndStream: end, EndHeaders: len(block) == 0})
			first = false
		} else {
			err = cc.fr.WriteContinuation(id, len(block) == 0, chunk)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// queueControl has the control writer write connection-management frames
// (for the read loop).
func (cc *Conn) queueControl(write func() error) {
	cc.ctrlMu.Lock()
	if len(cc.ctrlQ) >= maxQueuedControl {
		cc.ctrlOverflow = true // the read loop ends the connection
		cc.ctrlMu.Unlock()
		return
	}
	cc.ctrlQ = append(cc.ctrlQ, write)
	cc.ctrlMu.Unlock()
	select {
	case cc.ctrlWake <- struct{}{}:
	default:
	}
}

// controlWriter writes the queued control frames until the read loop ends.
func (cc *Conn) controlWriter() {
	for {
		select {
		case <-cc.readDone:
			return
		case <-cc.ctrlWake:
		}
		cc.ctrlMu.Lock()
		q := cc.ctrlQ
		cc.ctrlQ = nil
		cc.ctrlMu.Unlock()
		cc.writeControl(func() error {
			for _, write := range q {
				if err := write(); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// writeControl writes connection-management frames and flushes.
func (cc *Conn) writeControl(write func() error) {
	cc.wmu.Lock()
	if cc.writeClosed {
		cc.wmu.Unlock()
		return
	}
	err := write()
	if err == nil {
		err = cc.bw.Flush()
	}
	cc.wmu.Unlock()
	if err != nil {
		cc.failWrite(err)
	}
}

// returnWindow hands n consumed bytes of s (nil: of a stream gone) back to
// the peer's windows once enough has accumulated.
func (cc *Conn) returnWindow(s *Stream, n int) { cc.giveWindow(s, n, cc.writeControl) }

// giveWindow is returnWindow writing with write (queueControl in the read loop).
func (cc *Conn) giveWindow(s *Stream, n int, write func(func() error)) {
	if n <= 0 {
		return
	}
	var streamInc, connInc uint32
	cc.mu.Lock()
	cc.recvUnacked += int64(n)
	if cc.recvUnacked >= int64(cc.opts.ConnWindow/2) {
		connInc = uint32(cc.recvUnacked)
		cc.recvWindow += cc.recvUnacked
		cc.recvUnacked = 0
	}
	if s != nil && !s.remoteDone && s.err == nil {
		s.unacked += int64(n)
		if s.unacked >= int64(cc.opts.StreamWindow/2) {
			streamInc = uint32(s.unacked)
			s.recvWindow += s.unacked
			s.unacked = 0
		}
	}
	cc.mu.Unlock()
	if streamInc == 0 && connInc == 0 {
		return
	}
	write(func() error {
		if connInc > 0 {
			if err := cc.fr.WriteWindowUpdate(0, connInc); err != nil {
				return err
			}
		}
		if streamInc > 0 {
			return cc.fr.WriteWindowUpdate(s.id, streamInc)
		}
		return nil
	})
}

func (cc *Conn) readLoop() {
	defer close(cc.readDone)
	err := cc.read()
	var ce *connError
	if errors.As(err, &ce) {
		if ce == ErrTooManyResets {
			cc.reject(RejectTooManyResets)
		} else {
			cc.reject(RejectProtocol)
		}
		// The connection ends: a last frame, not worth waiting long for
		// (the deadline also frees a control write blocked on the peer).
		_ = cc.nc.SetWriteDeadline(time.Now().Add(time.Second))
		cc.writeControl(func() error { return cc.fr.WriteGoAway(cc.lastStreamID(), ce.code, []byte(ce.msg)) })
	}
	cc.fail(err)
	if ce != nil {
		cc.linger()
	}
	cc.nc.Close()
	if cc.onClose != nil {
		cc.onClose(cc)
	}
}

// read handles frames until the connection fails.
func (cc *Conn) read() error {
	gotSettings := false
	for {
		f, err := cc.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// A malformed head (bad header field, ...): only that stream fails.
				cc.reject(RejectMalformed)
				cc.resetStream(se.StreamID, se.Code, fmt.Errorf("%w: %w", errProtocol, err))
				continue
			}
			if ce, ok := err.(http2.ConnectionError); ok {
				return &connError{code: http2.ErrCode(ce), msg: err.Error()}
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("h2: connection closed by peer: %w", io.ErrUnexpectedEOF)
			}
			return fmt.Errorf("h2: read: %w", err)
		}
		if !gotSettings {
			if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
				return &connError{code: http2.ErrCodeProtocol, msg: "first frame is not SETTINGS"}
			}
			gotSettings = true
		}
		cc.ctrlMu.Lock()
		overflow := cc.ctrlOverflow
		cc.ctrlMu.Unlock()
		if overflow {
			return &connError{code: http2.ErrCodeEnhanceYourCalm, msg: "peer does not read the frames it asks for"}
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if err := cc.onHeaders(f); err != nil {
				return err
			}
		case *http2.DataFrame:
			if err := cc.onData(f); err != nil {
				return err
			}
		case *http2.RSTStreamFrame:
			var onReset func()
			cc.mu.Lock()
			if cc.idleStreamLocked(f.StreamID) {
				cc.mu.Unlock()
				return &connError{code: http2.ErrCodeProtocol, msg: "RST_STREAM on an idle stream"}
			}
			if s := cc.streams[f.StreamID]; s != nil {
				if cc.server && !s.localDone && !cc.takeResetLocked() {
					cc.mu.Unlock()
					return ErrTooManyResets
				}
				onReset = s.takeOnResetLocked()
				s.resetSent = true // nothing left to reset
				if s.remoteDone && s.err == nil {
					// The peer's side is complete: only ours is cut short
					// (a response that did not need all of the request).
					s.stopped = &StreamError{Code: f.ErrCode}
				} else {
					s.failLocked(&StreamError{Code: f.ErrCode})
					s.remoteDone = true
				}
				cc.cond.Broadcast()
			}
			cc.mu.Unlock()
			if onReset != nil {
				onReset()
			}
		case *http2.SettingsFrame:
			if err := cc.onSettings(f); err != nil {
				return err
			}
		case *http2.WindowUpdateFrame:
			if err := cc.onWindowUpdate(f); err != nil {
				return err
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				cc.queueControl(func() error { return cc.fr.WritePing(true, data) })
			}
		case *http2.GoAwayFrame:
			cc.onGoAway(f)
		case *http2.PushPromiseFrame:
			return &connError{code: http2.ErrCodeProtocol, msg: "PUSH_PROMISE"}
		default:
			// PRIORITY and unknown frame types are ignored.
		}
	}
}

// idleStreamLocked reports whether stream id was never opened (RFC 9113
// §5.1: only HEADERS and PRIORITY may name an idle stream); cc.mu is held.
func (cc *Conn) idleStreamLocked(id uint32) bool {
	if cc.server {
		return id > cc.lastID
	}
	return id%2 == 0 || id >= cc.nextID
}

// takeResetLocked takes a token from the bucket of client resets, and
// reports whether there was one; cc.mu is held.
func (cc *Conn) takeResetLocked() bool {
	now := time.Now()
	if !cc.resetAt.IsZero() {
		cc.resetTokens = min(float64(cc.opts.ResetBurst), cc.resetTokens+now.Sub(cc.resetAt).Seconds()*cc.opts.ResetRate)
	}
	cc.resetAt = now
	if cc.resetTokens < 1 {
		return false
	}
	cc.resetTokens--
	return true
}

// Bounds of linger.
const (
	lingerTime  = time.Second
	lingerBytes = 256 << 10
)

// linger ends a connection the peer broke after the GOAWAY that says why:
// our side is closed, and what the peer still sends is read and dropped,
// for a bounded time and amount, so that closing does not reset the
// connection before the peer read the GOAWAY.
func (cc *Conn) linger() {
	cc.wmu.Lock()
	cw, ok := cc.nc.(interface{ CloseWrite() error })
	ok = ok && !cc.writeClosed && cw.CloseWrite() == nil
	cc.writeClosed = true
	cc.wmu.Unlock()
	if !ok {
		return
	}
	_ = cc.nc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.Copy(io.Discard, io.LimitReader(cc.nc, lingerBytes))
}

func (cc *Conn) lastStreamID() uint32 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.lastID
}

// resetStream fails stream id with err and tells the peer.
func (cc *Conn) resetStream(id uint32, code http2.ErrCode, err error) {
	cc.mu.Lock()
	if s := cc.streams[id]; s != nil {
		s.failLocked(err)
		s.remoteDone = true
		s.localDone = true
		s.resetSent = true
	}
	cc.mu.Unlock()
	cc.queueControl(func() error { return cc.fr.WriteRSTStream(id, code) })
}

func (cc *Conn) onHeaders(f *http2.MetaHeadersFrame) error {
	cc.mu.Lock()
	s := cc.streams[f.StreamID]
	if s == nil {
		if cc.server {
			return cc.newRequestLocked(f) // unlocks
		}
		cc.mu.Unlock()
		return nil // cancelled by us
	}
	if s.remoteDone {
		cc.mu.Unlock()
		return nil // reset
	}
	if f.Truncated {
		cc.mu.Unlock()
		cc.resetStream(f.StreamID, http2.ErrCodeProtocol, fmt.Errorf("%w: header list larger than %d bytes", errProtocol, cc.opts.MaxHeaderListSize))
		return nil
	}
	if s.final {
		// Trailers end the stream.
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
			cc.mu.Unlock()
			cc.resetStream(f.StreamID, http2.ErrCodeProtocol, fmt.Errorf("%w: bad trailers", errProtocol))
			return nil
		}
		if s.bodyLen >= 0 && s.received != s.bodyLen {
			cc.mu.Unlock()
			cc.reject(RejectMalformed)
			cc.resetStream(f.StreamID, http2.ErrCodeProtocol, fmt.Errorf("%w: body shorter than its content-length", errProtocol))
			return nil
		}
		s.trailer = f.RegularFields()
		s.remoteDone = true
		s.signal()
		cc.mu.Unlock()
		return nil
	}
	status, ok := parseStatus(f.PseudoValue("status"))
	if !ok {
		cc.mu.Unlock()
		cc.resetStream(f.StreamID, http2.ErrCodeProtocol, fmt.Errorf("%w: missing or invalid :status", errProtocol))
		return nil
	}
	s.heads = append(s.heads, Head{Status: status, Fields: f.RegularFields()})
	if status >= 200 {
		s.final = true
		s.remoteDone = f.StreamEnded()
	}
	s.signal()
	cc.mu.Unlock()
	return nil
}

// newRequestLocked starts a stream for a request head on a server
// connection and its handler; cc.mu is held and released.
func (cc *Conn) newRequestLocked(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 || id <= cc.lastID {
		cc.mu.Unlock()
		if id%2 == 0 {
			return &connError{code: http2.ErrCodeProtocol, msg: fmt.Sprintf("stream %d opened by the client is even", id)}
		}
		return nil // a stream already finished (or refused): ignore
	}
	cc.lastID = id
	if cc.goAway || cc.err != nil || cc.reserved >= int(cc.opts.MaxStreams) {
		cc.mu.Unlock()
		cc.queueControl(func() error { return cc.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) })
		return nil
	}
	if f.Truncated {
		cc.mu.Unlock()
		cc.reject(RejectHeaderTooLarge)
		cc.refuseHeaderList(id, f.StreamEnded())
		return nil
	}
	bodyLen, ok := checkRequestFields(f)
	if !ok || (bodyLen > 0 && f.StreamEnded()) {
		cc.mu.Unlock()
		cc.reject(RejectMalformed)
		cc.queueControl(func() error { return cc.fr.WriteRSTStream(id, http2.ErrCodeProtocol) })
		return nil
	}
	s := newStream(cc)
	s.id = id
	s.sendWindow = cc.peerInitWindow
	s.heads = append(s.heads, Head{Fields: f.Fields})
	s.final = true
	s.remoteDone = f.StreamEnded()
	s.bodyLen = bodyLen
	cc.streams[id] = s
	cc.reserved++
	cc.mu.Unlock()
	select {
	case cc.work <- s: // an idle worker takes it
	default:
		cc.handlers.Add(1)
		go cc.worker(s)
	}
	return nil
}

// refuseHeaderList answers a request whose head is over
// MaxHeaderListSize with 431 and, when the client is still sending it,
// stops the stream (RST_STREAM NO_ERROR).
func (cc *Conn) refuseHeaderList(id uint32, ended bool) {
	fields := []Field{
		{Name: ":status", Value: "431"},
		{Name: "l5d-proxy-error", Value: "request header list too large"},
		{Name: "content-length", Value: "0"},
	}
	cc.queueControl(func() error {
		cc.mu.Lock()
		maxFrame := cc.maxFrame
		cc.mu.Unlock()
		if err := cc.writeHeadersLocked(id, fields, true, maxFrame); err != nil {
			return err
		}
		if !ended {
			return cc.fr.WriteRSTStream(id, http2.ErrCodeNo)
		}
		return nil
	})
}

// checkRequestFields checks a request head for what makes it malformed
// (RFC 9113 §8.2.2, §8.3.1): connection-specific fields, a TE other than
// "trailers", pseudo-header fields other than a request's, an invalid or
// repeated content-length. It returns the content-length, -1 when absent.
func checkRequestFields(f *http2.MetaHeadersFrame) (int64, bool) {
	n := int64(-1)
	for _, hf := range f.Fields {
		switch hf.Name {
		case ":method", ":scheme", ":authority", ":path", ":protocol":
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return 0, false
		case "te":
			if hf.Value != "trailers" {
				return 0, false
			}
		case "content-length":
			v, err := strconv.ParseUint(hf.Value, 10, 63)
			if err != nil || (n >= 0 && int64(v) != n) {
				return 0, false
			}
			n = int64(v)
		default:
			if hf.IsPseudo() {
				return 0, false
			}
		}
	}
	return n, f.PseudoValue("method") != ""
}

// workerIdle is how long a handler goroutine waits for another request
// before it exits.
const workerIdle = 30 * time.Second

// worker runs the handler for s, then for the streams handed to it while
// it waits, idle: a goroutine that served a request has grown its stack to
// what the next one needs (growing it again on a new goroutine, request
// after request, cost the proxy several percent of its CPU).
func (cc *Conn) worker(s *Stream) {
	defer cc.handlers.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		cc.handler(s)
		idle.Reset(workerIdle)
		select {
		case s = <-cc.work:
		case <-idle.C:
			return
		case <-cc.readDone:
			return
		}
	}
}

func parseStatus(v string) (int, bool) {
	if len(v) != 3 {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 100
}

func (cc *Conn) onData(f *http2.DataFrame) error {
	data := f.Data()
	n := int64(f.Length)
	cc.mu.Lock()
	if cc.idleStreamLocked(f.StreamID) {
		cc.mu.Unlock()
		return &connError{code: http2.ErrCodeProtocol, msg: "DATA on an idle stream"}
	}
	if n > cc.recvWindow {
		cc.mu.Unlock()
		return &connError{code: http2.ErrCodeFlowControl, msg: "connection window exceeded"}
	}
	cc.recvWindow -= n
	s := cc.streams[f.StreamID]
	if s == nil || s.remoteDone || !s.final || s.err != nil {
		// The peer ended its side and sends more: the stream is closed to it.
		closed := s != nil && s.remoteDone && s.err == nil && !s.resetSent
		early := s != nil && !s.remoteDone && !s.final
		cc.mu.Unlock()
		// Not for a stream reading a body: the bytes are consumed at once.
		cc.giveWindow(nil, int(n), cc.queueControl)
		switch {
		case early:
			cc.resetStream(f.StreamID, http2.ErrCodeProtocol, fmt.Errorf("%w: DATA before the head", errProtocol))
		case closed:
			cc.resetStream(f.StreamID, http2.ErrCodeStreamClosed, fmt.Errorf("%w: DATA after the end of the stream", errProtocol))
		}
		return nil
	}
	if n > s.recvWindow {
		cc.mu.Unlock()
		cc.resetStream(f.StreamID, http2.ErrCodeFlowControl, fmt.Errorf("%w: stream window exceeded", errProtocol))
		cc.giveWindow(nil, int(n), cc.queueControl)
		return nil
	}
	s.received += int64(len(data))
	if s.bodyLen >= 0 && (s.received > s.bodyLen || (f.StreamEnded() && s.received != s.bodyLen)) {
		cc.mu.Unlock()
		cc.reject(RejectMalformed)
		cc.resetStream(f.StreamID, http2.ErrCodeProtocol, fmt.Errorf("%w: body length differs from its content-length", errProtocol))
		cc.giveWindow(nil, int(n), cc.queueControl)
		return nil
	}
	s.recvWindow -= n
	s.buf = append(s.buf, data...)
	if f.StreamEnded() {
		s.remoteDone = true
	}
	s.signal()
	cc.mu.Unlock()
	// Padding is consumed at once.
	cc.giveWindow(s, int(n)-len(data), cc.queueControl)
	return nil
}

func (cc *Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	tableSize := int64(-1)
	cc.mu.Lock()
	err := f.ForeachSetting(func(st http2.Setting) error {
		if err := st.Valid(); err != nil {
			code := http2.ErrCodeProtocol
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				code = http2.ErrCode(ce)
			}
			return &connError{code: code, msg: "invalid setting " + st.String()}
		}
		switch st.ID {
		case http2.SettingMaxConcurrentStreams:
			cc.maxStreams = int(min(st.Val, 1<<20))
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - cc.peerInitWindow
			cc.peerInitWindow = int64(st.Val)
			for _, s := range cc.streams {
				s.sendWindow += delta
				if s.sendWindow > maxStreamID {
					return &connError{code: http2.ErrCodeFlowControl, msg: "stream window overflow"}
				}
			}
		case http2.SettingMaxHeaderListSize:
			cc.peerMaxHeaders = st.Val
		case http2.SettingMaxFrameSize:
			cc.maxFrame = int(st.Val)
		case http2.SettingHeaderTableSize:
			tableSize = int64(st.Val)
		}
		return nil
	})
	cc.cond.Broadcast()
	cc.mu.Unlock()
	if err != nil {
		return err
	}
	cc.queueControl(func() error {
		if tableSize >= 0 {
			// The encoder changes under wmu, like every header block it writes.
			cc.henc.SetMaxDynamicTableSizeLimit(uint32(min(tableSize, 4096)))
		}
		return cc.fr.WriteSettingsAck()
	})
	return nil
}

func (cc *Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	cc.mu.Lock()
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		cc.sendWindow += inc
		if cc.sendWindow > maxStreamID {
			cc.mu.Unlock()
			return &connError{code: http2.ErrCodeFlowControl, msg: "connection window overflow"}
		}
	} else if cc.idleStreamLocked(f.StreamID) {
		cc.mu.Unlock()
		return &connError{code: http2.ErrCodeProtocol, msg: "WINDOW_UPDATE on an idle stream"}
	} else if s := cc.streams[f.StreamID]; s != nil {
		s.sendWindow += inc
		if s.sendWindow > maxStreamID {
			cc.mu.Unlock()
			cc.resetStream(f.StreamID, http2.ErrCodeFlowControl, fmt.Errorf("%w: stream window overflow", errProtocol))
			return nil
		}
	}
	cc.cond.Broadcast()
	cc.mu.Unlock()
	return nil
}

func (cc *Conn) onGoAway(f *http2.GoAwayFrame) {
	cc.mu.Lock()
	cc.goAway = true
	if !cc.server && cc.reserved == 0 {
		cc.nc.Close() // nothing left to wait for; the read loop ends
	}
	if !cc.server {
		for id, s := range cc.streams {
			if id > f.LastStreamID {
				s.failLocked(fmt.Errorf("h2: peer going away: %w", ErrUnprocessed))
				s.remoteDone = true
				s.resetSent = true // the peer never saw it: resetting it would be an error
			}
		}
	}
	cc.cond.Broadcast()
	cc.mu.Unlock()
}
