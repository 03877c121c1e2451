package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"

	"github.com/linkerd-go/linkerd/proxy/internal/bufpool"
)

// Chunked coding limits.
const (
	// maxChunkLine bounds a chunk-size line, extensions included.
	maxChunkLine = 4 << 10
	// maxTrailerBytes bounds a trailer section.
	maxTrailerBytes = MaxHeadBytes
)

var (
	errChunkSize     = errors.New("h1: invalid chunk size")
	errChunkEnd      = errors.New("h1: chunk data not followed by CRLF")
	errLineTooLong   = errors.New("h1: chunk-size line too long")
	errTrailer       = errors.New("h1: malformed trailer field")
	errTrailerTooBig = errors.New("h1: trailer section too large")
)

// writeError marks an error from the destination of a copy, to tell it
// from a failure of the source.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

func wrapWrite(err error) error {
	if err == nil {
		return nil
	}
	return &writeError{err}
}

// isWriteError reports whether err came from the destination of a copy.
func isWriteError(err error) bool {
	var we *writeError
	return errors.As(err, &we)
}

// more waits for more bytes from r. Whatever w holds is flushed first, so
// that a streamed body never sits in a buffer while the proxy blocks.
func more(r *reader, w *bufio.Writer) error {
	if w.Buffered() > 0 {
		if err := w.Flush(); err != nil {
			return wrapWrite(err)
		}
	}
	return r.fill()
}

// copyN copies n bytes of a body from r to w. Large remainders bypass the
// buffers.
func copyN(w *bufio.Writer, r *reader, n int64) error {
	for n > 0 {
		if b := r.buffered(); len(b) > 0 {
			k := int(min(int64(len(b)), n))
			if _, err := w.Write(b[:k]); err != nil {
				return wrapWrite(err)
			}
			r.discard(k)
			n -= int64(k)
			continue
		}
		if n >= int64(len(r.buf)) {
			return copyDirect(w, r, n)
		}
		if err := more(r, w); err != nil {
			return unexpectedEOF(err)
		}
	}
	return nil
}

// copyDirect copies n bytes (or, when n < 0, until EOF) from r's source to
// w's destination through a large pooled buffer; r has nothing buffered.
func copyDirect(w *bufio.Writer, r *reader, n int64) error {
	if w.Buffered() > 0 {
		if err := w.Flush(); err != nil {
			return wrapWrite(err)
		}
	}
	bp := bufpool.Get()
	defer bufpool.Put(bp)
	buf := *bp
	for n != 0 {
		p := buf
		if n > 0 && n < int64(len(p)) {
			p = p[:n]
		}
		k, err := r.Read(p)
		if k > 0 {
			// w is empty and p large: Write goes straight to the connection.
			if _, werr := w.Write(p[:k]); werr != nil {
				return wrapWrite(werr)
			}
			if werr := w.Flush(); werr != nil {
				return wrapWrite(werr)
			}
			if n > 0 {
				n -= int64(k)
			}
		}
		if err != nil {
			if n < 0 && err == io.EOF {
				return nil
			}
			return unexpectedEOF(err)
		}
	}
	return nil
}

// copyUntilEOF copies a body delimited by the end of the connection.
func copyUntilEOF(w *bufio.Writer, r *reader) error {
	if b := r.buffered(); len(b) > 0 {
		if _, err := w.Write(b); err != nil {
			return wrapWrite(err)
		}
		r.discard(len(b))
	}
	return copyDirect(w, r, -1)
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readLine returns the next CRLF-terminated line from r, without the CRLF,
// and the number of bytes to discard once it is used. Lines longer than max
// are an error. w is flushed before blocking.
func readLine(r *reader, w *bufio.Writer, max int) (line []byte, n int, err error) {
	scanned := 0
	for {
		b := r.buffered()
		if i := bytes.IndexByte(b[scanned:], '\n'); i >= 0 {
			lf := scanned + i
			if lf == 0 || b[lf-1] != '\r' {
				return nil, 0, errBareLF
			}
			return b[:lf-1], lf + 1, nil
		}
		scanned = len(b)
		if scanned > max {
			return nil, 0, errLineTooLong
		}
		if err := more(r, w); err != nil {
			if err == errBufferFull {
				if r.grow(max + 2) {
					continue
				}
				return nil, 0, errLineTooLong
			}
			return nil, 0, unexpectedEOF(err)
		}
	}
}

// parseChunkSize parses a chunk-size line: hexadecimal digits, then
// optional whitespace and chunk extensions, which are dropped.
func parseChunkSize(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if i == 15 {
			return 0, errChunkSize // more than 2^60 bytes
		}
		n = n<<4 | int64(d)
	}
ext:
	if i == 0 {
		return 0, errChunkSize
	}
	rest := line[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 {
		if rest[0] != ';' {
			return 0, errChunkSize
		}
		for _, c := range rest {
			if !fieldValueByte(c) {
				return 0, errChunkSize
			}
		}
	}
	return n, nil
}

// copyChunked decodes a chunked body from r and writes it to w re-encoded:
// the same chunks without extensions, then the last chunk and the trailer
// section. trailer, when not nil, sees each trailer field.
func copyChunked(w *bufio.Writer, r *reader, trailer func(name, value []byte)) error {
	return chunked(w, r, trailer, true)
}

// decodeChunked decodes a chunked body from r and writes only its data to
// w; trailer sees each trailer field.
func decodeChunked(w *bufio.Writer, r *reader, trailer func(name, value []byte)) error {
	return chunked(w, r, trailer, false)
}

// chunked is copyChunked (reencode) or decodeChunked.
func chunked(w *bufio.Writer, r *reader, trailer func(name, value []byte), reencode bool) error {
	var hex [16]byte
	for {
		line, n, err := readLine(r, w, maxChunkLine)
		if err != nil {
			return err
		}
		size, err := parseChunkSize(line)
		if err != nil {
			return err
		}
		r.discard(n)
		if size == 0 {
			break
		}
		if reencode {
			if _, err := w.Write(strconv.AppendInt(hex[:0], size, 16)); err != nil {
				return wrapWrite(err)
			}
			if _, err := w.WriteString("\r\n"); err != nil {
				return wrapWrite(err)
			}
		}
		if err := copyN(w, r, size); err != nil {
			return err
		}
		line, n, err = readLine(r, w, 2)
		if err != nil {
			if err == errLineTooLong || err == errBareLF {
				return errChunkEnd
			}
			return err
		}
		if len(line) != 0 {
			return errChunkEnd
		}
		r.discard(n)
		if !reencode {
			continue
		}
		if _, err := w.WriteString("\r\n"); err != nil {
			return wrapWrite(err)
		}
	}
	if reencode {
		if _, err := w.WriteString("0\r\n"); err != nil {
			return wrapWrite(err)
		}
	}
	total := 0
	for {
		line, n, err := readLine(r, w, maxTrailerBytes)
		if err != nil {
			return err
		}
		if total += n; total > maxTrailerBytes {
			return errTrailerTooBig
		}
		if len(line) == 0 {
			r.discard(n)
			break
		}
		f, ok := parseField(line, 0, len(line))
		if !ok {
			return errTrailer
		}
		if trailer != nil {
			trailer(f.name.of(line), f.value.of(line))
		}
		if reencode {
			if _, err := w.Write(line); err != nil {
				return wrapWrite(err)
			}
			if _, err := w.WriteString("\r\n"); err != nil {
				return wrapWrite(err)
			}
		}
		r.discard(n)
	}
	if !reencode {
		return nil
	}
	if _, err := w.WriteString("\r\n"); err != nil {
		return wrapWrite(err)
	}
	return nil
}

// chunkedLen returns the length of the complete chunked body, trailers
// included, at the start of b; ok is false when b holds only part of one.
// Invalid framing reports false too: the streaming decoder then meets, and
// reports, the error.
func chunkedLen(b []byte) (n int, ok bool) {
	for {
		lf := bytes.IndexByte(b[n:], '\n')
		if lf < 1 || b[n+lf-1] != '\r' {
			return 0, false
		}
		size, err := parseChunkSize(b[n : n+lf-1])
		if err != nil {
			return 0, false
		}
		n += lf + 1
		if size == 0 {
			break
		}
		if int64(len(b)-n) < size+2 {
			return 0, false
		}
		n += int(size) + 2
		if b[n-2] != '\r' || b[n-1] != '\n' {
			return 0, false
		}
	}
	for {
		lf := bytes.IndexByte(b[n:], '\n')
		if lf < 1 || b[n+lf-1] != '\r' {
			return 0, false
		}
		if lf == 1 {
			return n + 2, true
		}
		if _, ok := parseField(b[n:n+lf-1], 0, lf-1); !ok {
			return 0, false
		}
		n += lf + 1
	}
}
