package cluster

import "sync"

// logBuffer keeps the last max bytes written to it, and counts every byte
// ever written so that callers can ask for what came after a mark.
type logBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte // the last len(buf) bytes, ending at offset written
	written int64
}

func newLogBuffer(max int) *logBuffer { return &logBuffer{max: max} }

// Write implements io.Writer; it never fails.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.written += int64(len(p))
	if len(p) >= b.max {
		b.buf = append(b.buf[:0], p[len(p)-b.max:]...)
		return len(p), nil
	}
	if over := len(b.buf) + len(p) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Mark returns the number of bytes written so far.
func (b *logBuffer) Mark() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.written
}

// Since returns what was written after mark, at most limit bytes (the
// newest ones), and whether anything was dropped (by the limit or because
// the buffer no longer holds it).
func (b *logBuffer) Since(mark int64, limit int) (out []byte, truncated bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.written - mark
	if n < 0 {
		n = 0
	}
	if n > int64(len(b.buf)) {
		n, truncated = int64(len(b.buf)), true
	}
	if limit >= 0 && n > int64(limit) {
		n, truncated = int64(limit), true
	}
	return append([]byte(nil), b.buf[int64(len(b.buf))-n:]...), truncated
}
