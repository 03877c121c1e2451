package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http/httputil"
	"strings"
	"testing"
)

func TestCopyChunked(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 100000)
	tests := []struct {
		name     string
		in       string
		out      string
		trailers string // name=value; as the callback saw them
		rest     string // bytes left after the body
		err      error
	}{
		{
			name: "chunks and no trailers",
			in:   "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\nNEXT",
			out:  "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n",
			rest: "NEXT",
		},
		{
			name: "extensions dropped, sizes normalised",
			in:   "00A;name=value\r\n0123456789\r\n0 ; last\r\n\r\n",
			out:  "a\r\n0123456789\r\n0\r\n\r\n",
		},
		{
			name: "whitespace before extension",
			in:   "3 \t;x\r\nabc\r\n0\r\n\r\n",
			out:  "3\r\nabc\r\n0\r\n\r\n",
		},
		{
			name:     "trailers forwarded",
			in:       "3\r\nabc\r\n0\r\nGrpc-Status: 0\r\nx-sum:  12 \r\n\r\n",
			out:      "3\r\nabc\r\n0\r\nGrpc-Status: 0\r\nx-sum:  12 \r\n\r\n",
			trailers: "Grpc-Status=0;x-sum=12;",
		},
		{
			name: "large chunk",
			in:   "186a0\r\n" + big + "\r\n0\r\n\r\n",
			out:  "186a0\r\n" + big + "\r\n0\r\n\r\n",
		},
		{name: "not hex", in: "zz\r\nhello\r\n0\r\n\r\n", err: errChunkSize},
		{name: "empty size", in: "\r\nhello\r\n0\r\n\r\n", err: errChunkSize},
		{name: "negative", in: "-5\r\nhello\r\n0\r\n\r\n", err: errChunkSize},
		{name: "junk after size", in: "5x\r\nhello\r\n0\r\n\r\n", err: errChunkSize},
		{name: "overflow", in: "1000000000000000\r\n", err: errChunkSize},
		{name: "data longer than size", in: "3\r\nhello\r\n0\r\n\r\n", err: errChunkEnd},
		{name: "missing CRLF after data", in: "5\r\nhello0\r\n\r\n", err: errChunkEnd},
		{name: "bare LF size line", in: "5\nhello\r\n0\r\n\r\n", err: errBareLF},
		{name: "control in extension", in: "5;\x01\r\nhello\r\n0\r\n\r\n", err: errChunkSize},
		{name: "size line too long", in: "5;" + strings.Repeat("e", maxChunkLine) + "\r\nhello\r\n0\r\n\r\n", err: errLineTooLong},
		{name: "malformed trailer", in: "0\r\nno colon\r\n\r\n", err: errTrailer},
		{name: "trailers too large", in: "0\r\n" + strings.Repeat("X: "+strings.Repeat("y", 1000)+"\r\n", 70) + "\r\n", err: errTrailerTooBig},
		{name: "truncated data", in: "10\r\nshort", err: io.ErrUnexpectedEOF},
		{name: "truncated before last chunk", in: "5\r\nhello\r\n", err: io.ErrUnexpectedEOF},
		{name: "truncated trailers", in: "0\r\nX: y\r\n", err: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{1, 7, 1 << 20} {
				r := newReader(&slowReader{s: tt.in, n: chunk})
				var out bytes.Buffer
				w := bufio.NewWriter(&out)
				var tr strings.Builder
				err := copyChunked(w, r, func(name, value []byte) {
					tr.WriteString(string(name) + "=" + string(value) + ";")
				})
				w.Flush()
				if !errors.Is(err, tt.err) {
					t.Fatalf("read %d at a time: err = %v, want %v", chunk, err, tt.err)
				}
				if err != nil {
					r.release()
					continue
				}
				if out.String() != tt.out {
					t.Fatalf("read %d at a time: out = %q, want %q", chunk, trim(out.String()), trim(tt.out))
				}
				if tr.String() != tt.trailers {
					t.Fatalf("trailers %q, want %q", tr.String(), tt.trailers)
				}
				rest, _ := io.ReadAll(r)
				if string(rest) != tt.rest {
					t.Fatalf("left %q, want %q", rest, tt.rest)
				}
				// The re-encoded body decodes to the same data as the original
				// (when net/http reads the original: it allows no whitespace
				// before an extension).
				want, werr := io.ReadAll(httputil.NewChunkedReader(strings.NewReader(tt.in)))
				got, err := io.ReadAll(httputil.NewChunkedReader(&out))
				if err != nil || (werr == nil && !bytes.Equal(got, want)) {
					t.Fatalf("re-encoded body decodes to %d bytes (%v), want %d", len(got), err, len(want))
				}
				r.release()
			}
		})
	}
}

func trim(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func TestChunkedLen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		n  int
		ok bool
	}{
		{"5\r\nhello\r\n0\r\n\r\n", 15, true},
		{"5\r\nhello\r\n0\r\n\r\nNEXT", 15, true},
		{"5;ext\r\nhello\r\n0\r\nX: y\r\n\r\n", 25, true},
		{"0\r\n\r\n", 5, true},
		{"5\r\nhello\r\n0\r\n", 0, false},
		{"5\r\nhel", 0, false},
		{"5\r\nhello\r\n0\r\nX: y\r\n", 0, false},
		{"5\r\nhelloXX0\r\n\r\n", 0, false},    // no CRLF after data
		{"zz\r\nhello\r\n0\r\n\r\n", 0, false}, // invalid: left to the streaming decoder
		{"0\r\nbad trailer\r\n\r\n", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		n, ok := chunkedLen([]byte(tt.in))
		if n != tt.n || ok != tt.ok {
			t.Errorf("chunkedLen(%q) = %d, %v; want %d, %v", tt.in, n, ok, tt.n, tt.ok)
		}
		if ok {
			// What chunkedLen accepts, the decoder accepts, consuming exactly n bytes.
			r := newReader(strings.NewReader(tt.in))
			w := bufio.NewWriter(io.Discard)
			if err := copyChunked(w, r, nil); err != nil {
				t.Errorf("copyChunked(%q): %v", tt.in, err)
			}
			rest, _ := io.ReadAll(r)
			if len(rest) != len(tt.in)-n {
				t.Errorf("copyChunked(%q) left %d bytes, want %d", tt.in, len(rest), len(tt.in)-n)
			}
		}
	}
}

func TestCopyN(t *testing.T) {
	for _, size := range []int{0, 1, 100, bufSize, bufSize + 1, 200000} {
		in := strings.Repeat("a", size) + "NEXT"
		for _, chunk := range []int{3, 5000, 1 << 20} {
			r := newReader(&slowReader{s: in, n: chunk})
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			if err := copyN(w, r, int64(size)); err != nil {
				t.Fatalf("size %d chunk %d: %v", size, chunk, err)
			}
			w.Flush()
			if out.Len() != size {
				t.Fatalf("size %d chunk %d: copied %d", size, chunk, out.Len())
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != "NEXT" {
				t.Fatalf("size %d chunk %d: left %q", size, chunk, trim(string(rest)))
			}
			r.release()
		}
	}
	r := newReader(strings.NewReader("short"))
	if err := copyN(bufio.NewWriter(io.Discard), r, 10); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated body: %v, want unexpected EOF", err)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestCopyErrorSides(t *testing.T) {
	in := strings.Repeat("a", 100000)
	r := newReader(strings.NewReader(in))
	err := copyN(bufio.NewWriter(failWriter{}), r, int64(len(in)))
	if !isWriteError(err) {
		t.Fatalf("destination failure not marked as a write error: %v", err)
	}
	r = newReader(strings.NewReader("5\r\nab"))
	err = copyChunked(bufio.NewWriter(io.Discard), r, nil)
	if err == nil || isWriteError(err) {
		t.Fatalf("source failure reported as %v", err)
	}
}

func TestCopyUntilEOF(t *testing.T) {
	in := "buffered" + strings.Repeat("b", 100000)
	r := newReader(&slowReader{s: in, n: 8})
	if err := r.fill(); err != nil { // some bytes already buffered
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	if err := copyUntilEOF(w, r); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if out.String() != in {
		t.Fatalf("copied %d bytes, want %d", out.Len(), len(in))
	}
}
