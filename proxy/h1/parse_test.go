package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

func TestScanHead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		from    int
		n, next int
		err     error
	}{
		{in: "GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", n: 27},
		{in: "GET / HTTP/1.1\r\nHost: a\r\n", next: 25},
		{in: "GET / HTTP/1.1\r\nHo", next: 16},
		{in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", from: 16, n: 27},
		{in: "\r\n", n: 2},
		{in: "GET / HTTP/1.1\nHost: a\r\n\r\n", err: errBareLF},
		{in: "GET / HTTP/1.1\r\nHost: a\r\n\n", err: errBareLF},
		{in: "", next: 0},
	}
	for _, tt := range tests {
		n, next, err := scanHead([]byte(tt.in), tt.from)
		if n != tt.n || next != tt.next || err != tt.err {
			t.Errorf("scanHead(%q, %d) = %d, %d, %v; want %d, %d, %v", tt.in, tt.from, n, next, err, tt.n, tt.next, tt.err)
		}
	}
}

func TestRejectStatus(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err    error
		status int
	}{
		{nil, 0}, {errHTTP10, 0}, {errConnect, 0}, {errUpgrade, 0}, {errExpect, 0}, {errTarget, 0},
		{errTooManyHeaders, 431}, {errHeadTooBig, 431},
		{errFraming, 400}, {errRequestLine, 400}, {errHeaderField, 400}, {errHost, 400}, {errBareLF, 400},
	} {
		if got := RejectStatus(tt.err); got != tt.status {
			t.Errorf("RejectStatus(%v) = %d, want %d", tt.err, got, tt.status)
		}
	}
}

func TestParseRequest(t *testing.T) {
	t.Parallel()
	type want struct {
		authority string
		length    int64
		chunked   bool
		close     bool
		grpc      bool
		head      bool
		forwarded string // head as written upstream
	}
	tests := []struct {
		name string
		in   string
		want want
		err  error
	}{
		{
			name: "simple GET",
			in:   "GET /a?b=c HTTP/1.1\r\nHost: svc.ns:8080\r\nAccept: */*\r\n\r\n",
			want: want{authority: "svc.ns:8080", length: -1, forwarded: "GET /a?b=c HTTP/1.1\r\nHost: svc.ns:8080\r\nAccept: */*\r\n\r\n"},
		},
		{
			name: "content length, fields byte for byte",
			in:   "POST /up HTTP/1.1\r\nhost:a\r\ncOnTeNt-LeNgTh: 12\r\nX-Sp:  two  spaces \r\n\r\n",
			want: want{authority: "a", length: 12, forwarded: "POST /up HTTP/1.1\r\nhost:a\r\ncOnTeNt-LeNgTh: 12\r\nX-Sp:  two  spaces \r\n\r\n"},
		},
		{
			name: "chunked re-added after hop-by-hop removal",
			in:   "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nHost: a\r\n\r\n",
			want: want{authority: "a", length: -1, chunked: true, forwarded: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"},
		},
		{
			name: "connection options",
			in:   "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Foo\r\nx-foo: 1\r\nKeep-Alive: 5\r\nProxy-Connection: keep-alive\r\nX-Bar: 2\r\n\r\n",
			want: want{authority: "a", length: -1, close: true, forwarded: "GET / HTTP/1.1\r\nHost: a\r\nX-Bar: 2\r\n\r\n"},
		},
		{
			name: "TE keeps only trailers",
			in:   "POST /s HTTP/1.1\r\nHost: a\r\nTE: gzip, Trailers\r\nContent-Type: application/grpc+proto\r\nContent-Length: 5\r\n\r\n",
			want: want{authority: "a", length: 5, grpc: true, forwarded: "POST /s HTTP/1.1\r\nHost: a\r\nContent-Type: application/grpc+proto\r\nContent-Length: 5\r\nTE: trailers\r\n\r\n"},
		},
		{
			name: "TE without trailers is dropped",
			in:   "GET / HTTP/1.1\r\nTE: gzip\r\nHost: a\r\n\r\n",
			want: want{authority: "a", length: -1, forwarded: "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		},
		{
			name: "absolute form",
			in:   "GET http://abs.example:81/p?q HTTP/1.1\r\nHost: ignored\r\nX: y\r\n\r\n",
			want: want{authority: "abs.example:81", length: -1, forwarded: "GET /p?q HTTP/1.1\r\nHost: abs.example:81\r\nX: y\r\n\r\n"},
		},
		{
			name: "absolute form without path or Host",
			in:   "GET HTTP://abs.example HTTP/1.1\r\n\r\n",
			want: want{authority: "abs.example", length: -1, forwarded: "GET / HTTP/1.1\r\nHost: abs.example\r\n\r\n"},
		},
		{
			name: "asterisk form",
			in:   "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
			want: want{authority: "a", length: -1, forwarded: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"},
		},
		{
			name: "HEAD",
			in:   "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
			want: want{authority: "a", length: -1, head: true, forwarded: "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"},
		},
		{
			name: "obs-text and empty values",
			in:   "GET / HTTP/1.1\r\nHost: a\r\nX-Utf8: caf\xc3\xa9\r\nX-Empty:\r\n\r\n",
			want: want{authority: "a", length: -1, forwarded: "GET / HTTP/1.1\r\nHost: a\r\nX-Utf8: caf\xc3\xa9\r\nX-Empty:\r\n\r\n"},
		},
		{
			name: "empty Host",
			in:   "GET / HTTP/1.1\r\nHost:\r\n\r\n",
			want: want{authority: "", length: -1, forwarded: "GET / HTTP/1.1\r\nHost:\r\n\r\n"},
		},
		{name: "HTTP/1.0", in: "GET / HTTP/1.0\r\nHost: a\r\n\r\n", err: errHTTP10},
		{name: "HTTP/2 version", in: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", err: errRequestLine},
		{name: "extra space", in: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", err: errRequestLine},
		{name: "trailing space", in: "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", err: errRequestLine},
		{name: "leading empty line", in: "\r\n", err: errRequestLine},
		{name: "method not a token", in: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", err: errRequestLine},
		{name: "CONNECT", in: "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", err: errConnect},
		{name: "relative target", in: "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", err: errTarget},
		{name: "non-ASCII target", in: "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", err: errTarget},
		{name: "asterisk with GET", in: "GET * HTTP/1.1\r\nHost: a\r\n\r\n", err: errTarget},
		{name: "userinfo", in: "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", err: errTarget},
		{name: "empty authority", in: "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", err: errTarget},
		{name: "no Host", in: "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", err: errHost},
		{name: "two Hosts", in: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", err: errHost},
		{name: "bad Host", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", err: errHost},
		{name: "Host with slash", in: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", err: errHost},
		{name: "length and chunked", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", err: errFraming},
		{name: "two lengths", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", err: errFraming},
		{name: "length list", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", err: errFraming},
		{name: "signed length", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", err: errFraming},
		{name: "huge length", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", err: errFraming},
		{name: "gzip coding", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err: errFraming},
		{name: "two codings", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", err: errFraming},
		{name: "websocket", in: "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", err: errUpgrade},
		{name: "h2c", in: "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", err: errUpgrade},
		{name: "expect", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n", err: errExpect},
		{name: "obs-fold", in: "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", err: errHeaderField},
		{name: "space before colon", in: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", err: errHeaderField},
		{name: "no colon", in: "GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", err: errHeaderField},
		{name: "control byte", in: "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", err: errHeaderField},
		{name: "bare CR", in: "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", err: errHeaderField},
		{name: "NUL", in: "GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n", err: errHeaderField},
		{name: "too many fields", in: "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", maxRequestFields) + "\r\n", err: errTooManyHeaders},
		// Requests handed off have their framing checked all the same.
		{name: "HTTP/1.0 chunked", in: "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", err: errFraming},
		{name: "HTTP/1.0 two lengths", in: "POST / HTTP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", err: errFraming},
		{name: "HTTP/1.0 without Host", in: "GET / HTTP/1.0\r\n\r\n", err: errHTTP10},
		{name: "CONNECT smuggling", in: "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", err: errFraming},
		{name: "expect smuggling", in: "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", err: errFraming},
		{name: "upgrade with bad field", in: "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nX : y\r\n\r\n", err: errHeaderField},
		{name: "target hand-off with chunked not last", in: "POST a/b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", err: errFraming},
		{name: "PRI", in: "PRI * HTTP/1.1\r\nHost: a\r\n\r\n", err: errRequestLine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h requestHead
			err := parseRequest([]byte(tt.in), &h)
			if err != tt.err {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			got := want{
				authority: string(h.authority.of(h.raw)), length: h.contentLength, chunked: h.chunked,
				close: h.close, grpc: h.grpc, head: h.head,
			}
			var b bytes.Buffer
			w := bufio.NewWriter(&b)
			writeRequestHead(w, &h, nil)
			w.Flush()
			got.forwarded = b.String()
			if got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			// What is forwarded parses again to the same request.
			var h2 requestHead
			if err := parseRequest(b.Bytes(), &h2); err != nil {
				t.Fatalf("forwarded head does not parse: %v", err)
			}
			if string(h2.authority.of(h2.raw)) != got.authority || h2.chunked != h.chunked || h2.contentLength != h.contentLength {
				t.Fatalf("forwarded head means something else: %+v", h2)
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	t.Parallel()
	type want struct {
		status    int
		length    int64
		chunked   bool
		close     bool
		http10    bool
		grpc      int32
		forwarded string // head as written to the client (chunked as parsed, keep-alive)
	}
	tests := []struct {
		name string
		in   string
		want want
		err  error
	}{
		{
			name: "OK",
			in:   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-a:b\r\n\r\n",
			want: want{status: 200, length: 2, grpc: -1, forwarded: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-a:b\r\n\r\n"},
		},
		{
			name: "no reason phrase",
			in:   "HTTP/1.1 404\r\n\r\n",
			want: want{status: 404, length: -1, grpc: -1, forwarded: "HTTP/1.1 404\r\n\r\n"},
		},
		{
			name: "HTTP/1.0 upstream",
			in:   "HTTP/1.0 200 Fine\r\nContent-Length: 0\r\n\r\n",
			want: want{status: 200, length: 0, http10: true, grpc: -1, forwarded: "HTTP/1.1 200 Fine\r\nContent-Length: 0\r\n\r\n"},
		},
		{
			name: "chunked wins over length",
			in:   "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\nTrailer: grpc-status\r\n\r\n",
			want: want{status: 200, length: -1, chunked: true, grpc: -1, forwarded: "HTTP/1.1 200 OK\r\nTrailer: grpc-status\r\nTransfer-Encoding: chunked\r\n\r\n"},
		},
		{
			name: "repeated equal lengths",
			in:   "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
			want: want{status: 200, length: 3, grpc: -1, forwarded: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"},
		},
		{
			name: "hop-by-hop",
			in:   "HTTP/1.1 200 OK\r\nConnection: close, X-H\r\nX-H: 1\r\nKeep-Alive: timeout=1\r\nUpgrade: x\r\nX-Keep: 2\r\n\r\n",
			want: want{status: 200, length: -1, close: true, grpc: -1, forwarded: "HTTP/1.1 200 OK\r\nX-Keep: 2\r\n\r\n"},
		},
		{
			name: "trailers-only gRPC",
			in:   "HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nGrpc-Status: 14\r\nContent-Length: 0\r\n\r\n",
			want: want{status: 200, length: 0, grpc: 14, forwarded: "HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nGrpc-Status: 14\r\nContent-Length: 0\r\n\r\n"},
		},
		{
			name: "early hints",
			in:   "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n",
			want: want{status: 103, length: -1, grpc: -1, forwarded: "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"},
		},
		{name: "two digit status", in: "HTTP/1.1 20 OK\r\n\r\n", err: errStatusLine},
		{name: "status below 100", in: "HTTP/1.1 099 X\r\n\r\n", err: errStatusLine},
		{name: "HTTP/2", in: "HTTP/2 200 OK\r\n\r\n", err: errStatusLine},
		{name: "no space after status", in: "HTTP/1.1 200OK\r\n\r\n", err: errStatusLine},
		{name: "control in reason", in: "HTTP/1.1 200 O\x01K\r\n\r\n", err: errStatusLine},
		{name: "different lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", err: errResponseLength},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", err: errResponseLength},
		{name: "gzip coding", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", err: errResponseTE},
		{name: "switching protocols", in: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", err: errResponseUpgrade},
		{name: "bad field", in: "HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", err: errResponseHeader},
		{name: "too many fields", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", maxResponseFields+1) + "\r\n", err: errTooManyHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h responseHead
			err := parseResponse([]byte(tt.in), &h, true)
			if err != tt.err {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			got := want{status: h.status, length: h.contentLength, chunked: h.chunked, close: h.close, http10: h.http10, grpc: h.grpcStatus}
			var b bytes.Buffer
			w := bufio.NewWriter(&b)
			writeResponseHead(w, &h, h.chunked, false)
			w.Flush()
			got.forwarded = b.String()
			if got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestResponseGRPCStatusOnlyWhenAsked(t *testing.T) {
	var h responseHead
	if err := parseResponse([]byte("HTTP/1.1 200 OK\r\nGrpc-Status: 3\r\n\r\n"), &h, false); err != nil {
		t.Fatal(err)
	}
	if h.grpcStatus != -1 {
		t.Fatalf("grpc-status read for a non-gRPC request: %d", h.grpcStatus)
	}
}

func TestWriteResponseHeadClose(t *testing.T) {
	var h responseHead
	if err := parseResponse([]byte("HTTP/1.1 200 OK\r\nX: 1\r\n\r\n"), &h, false); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	writeResponseHead(w, &h, true, true)
	w.Flush()
	if want := "HTTP/1.1 200 OK\r\nX: 1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"; b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}

// slowReader returns its input a few bytes at a time.
type slowReader struct {
	s string
	n int
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.s) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n, len(r.s))
	copy(p, r.s[:n])
	r.s = r.s[n:]
	return n, nil
}

func TestReaderReadHead(t *testing.T) {
	t.Parallel()
	bigLine := "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("v", MaxHeadBytes) + "\r\n\r\n"
	bigHead := "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-Many: "+strings.Repeat("v", 100)+"\r\n", 600) + "\r\n"
	mid := "GET / HTTP/1.1\r\nHost: a\r\nX-Mid: " + strings.Repeat("v", 20000) + "\r\n\r\n"
	tests := []struct {
		name  string
		in    string
		chunk int
		n     int
		err   error
	}{
		{name: "small", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\nrest", chunk: 3, n: 27},
		{name: "larger than a buffer", in: mid, chunk: 1000, n: len(mid)},
		{name: "line over the limit", in: bigLine, chunk: 5000, err: errHeadTooBig},
		{name: "head over the limit", in: bigHead, chunk: 5000, err: errHeadTooBig},
		{name: "cut short", in: "GET / HTTP/1.1\r\nHost: a\r\n", chunk: 7, err: io.EOF},
		{name: "bare LF", in: "GET / HTTP/1.1\nHost: a\n\n", chunk: 100, err: errBareLF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReader(&slowReader{s: tt.in, n: tt.chunk})
			defer r.release()
			scanned := 0
			n, err := r.readHead(&scanned)
			if !errors.Is(err, tt.err) || n != tt.n {
				t.Fatalf("readHead = %d, %v; want %d, %v", n, err, tt.n, tt.err)
			}
			if err == nil && string(r.buffered()[:n]) != tt.in[:n] {
				t.Fatal("head bytes differ from the input")
			}
		})
	}
}

func TestReaderShrinksAfterLargeHead(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 10000) + "\r\n\r\n"
	r := newReader(strings.NewReader(in))
	defer r.release()
	scanned := 0
	n, err := r.readHead(&scanned)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.buf) <= bufSize {
		t.Fatalf("buffer did not grow: %d", len(r.buf))
	}
	r.discard(n)
	if len(r.buf) != bufSize {
		t.Fatalf("buffer of %d bytes kept after the head was consumed", len(r.buf))
	}
}

func BenchmarkParseRequest(b *testing.B) {
	raw := []byte("POST /echo HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: fortio.org/fortio-1.68.2\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Length: 128\r\nAccept: */*\r\n\r\n")
	var h requestHead
	b.ReportAllocs()
	for b.Loop() {
		if err := parseRequest(raw, &h); err != nil {
			b.Fatal(err)
		}
	}
}

func TestOwnHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fields []pipeline.Field
		want   string
	}{
		{[]pipeline.Field{{Name: "l5d-client-id", Value: "web.ns.serviceaccount.identity.linkerd.cluster.local"}},
			"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nl5d-client-id: web.ns.serviceaccount.identity.linkerd.cluster.local\r\n\r\n"},
		{nil, "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n"},
		{[]pipeline.Field{{Name: "l5d-client-id", Value: "bad\r\nX-Injected: 1"}}, "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n"},
	}
	for _, tt := range tests {
		var h requestHead
		if err := parseRequest([]byte("GET / HTTP/1.1\r\nL5D-Client-ID: forged\r\nHost: a\r\nl5d-client-id: again\r\nX: 1\r\n\r\n"), &h); err != nil {
			t.Fatal(err)
		}
		h.drop([]byte(pipeline.HeaderClientID))
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		writeRequestHead(w, &h, renderFields(nil, tt.fields))
		w.Flush()
		if b.String() != tt.want {
			t.Errorf("%+v: forwarded %q, want %q", tt.fields, b.String(), tt.want)
		}
	}
}
