package h1

import (
	"errors"
	"io"
	"sync"
)

// Buffer sizes.
const (
	// bufSize is the size of pooled read and write buffers.
	bufSize = 4 << 10
	// MaxHeadBytes bounds a request or response head (request line or status
	// line plus header fields). A larger request head is handed off to the
	// general-purpose server; a larger response head is an upstream error.
	MaxHeadBytes = 64 << 10
)

var (
	errBufferFull = errors.New("h1: buffer full")
	errHeadTooBig = errors.New("h1: message head too large")
)

var readBufs = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// reader is a buffered reader whose unread bytes can be parsed in place
// (message heads) and replayed (hand-off). Its buffer comes from a pool and
// grows, up to MaxHeadBytes, only for heads that do not fit.
type reader struct {
	rd   io.Reader
	buf  []byte
	r, w int
	err  error // read error held back while buffered bytes were returned
}

func newReader(rd io.Reader) *reader {
	return &reader{rd: rd, buf: *readBufs.Get().(*[]byte)}
}

// release returns the buffer to its pool; the reader must not be used afterwards.
func (b *reader) release() {
	if cap(b.buf) == bufSize {
		buf := b.buf[:bufSize]
		readBufs.Put(&buf)
	}
	b.buf, b.rd = nil, nil
}

// buffered returns the unread bytes; the slice is valid until the next fill.
func (b *reader) buffered() []byte { return b.buf[b.r:b.w] }

// discard drops n buffered bytes.
func (b *reader) discard(n int) {
	b.r += n
	if b.r == b.w {
		b.r, b.w = 0, 0
		if len(b.buf) > bufSize {
			// A large head is gone: go back to a pooled buffer.
			b.buf = *readBufs.Get().(*[]byte)
		}
	}
}

// fill reads more bytes from the source, after the buffered ones. It
// returns errBufferFull when the buffer holds nothing but unread bytes.
func (b *reader) fill() error {
	if b.err != nil {
		err := b.err
		b.err = nil
		return err
	}
	if b.w == len(b.buf) {
		if b.r == 0 {
			return errBufferFull
		}
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	// A reader that returns nothing and no error must not spin forever.
	for range 100 {
		n, err := b.rd.Read(b.buf[b.w:])
		b.w += n
		if n > 0 {
			b.err = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// grow enlarges the buffer (doubling, at most to max bytes); it reports
// whether there is more room.
func (b *reader) grow(max int) bool {
	if len(b.buf) >= max {
		return false
	}
	nb := make([]byte, min(2*len(b.buf), max))
	b.w = copy(nb, b.buf[b.r:b.w])
	b.r = 0
	old := b.buf
	b.buf = nb
	if cap(old) == bufSize {
		readBufs.Put(&old)
	}
	return true
}

// Read implements io.Reader: buffered bytes first, then straight from the
// source when p is at least as large as the buffer.
func (b *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			err := b.err
			b.err = nil
			return 0, err
		}
		if len(p) >= len(b.buf) {
			return b.rd.Read(p)
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.discard(n)
	return n, nil
}

// readHead waits until the buffer holds a complete message head and
// returns its length. scanned carries, across calls, how far the buffered
// bytes were already checked. The head stays buffered.
func (b *reader) readHead(scanned *int) (int, error) {
	for {
		n, next, err := scanHead(b.buffered(), *scanned)
		if err != nil {
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
		*scanned = next
		if err := b.fill(); err != nil {
			if err == errBufferFull {
				if !b.grow(MaxHeadBytes) {
					return 0, errHeadTooBig
				}
				continue
			}
			return 0, err
		}
	}
}
