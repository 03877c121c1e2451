package h1

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// FuzzParseRequest feeds arbitrary bytes to the request head reader and
// parser. Whatever they are, parsing must not panic, and a request the
// fast path accepts must be forwarded as a head that parses again to the
// same authority and framing.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a:80\r\nContent-Length: 3\r\nConnection: close, X\r\nX: y\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET http://b.example:9/p?q HTTP/1.1\r\nHost: a\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := newReader(bytes.NewReader(in))
		defer r.release()
		scanned := 0
		n, err := r.readHead(&scanned)
		if err != nil {
			return
		}
		var h requestHead
		err = parseRequest(r.buffered()[:n], &h)
		if RejectStatus(err) != 0 {
			return
		}
		// Forwarded or handed off: the framing is unambiguous (RFC 9112
		// §6.3): at most one Content-Length, at most one Transfer-Encoding
		// (chunked), never both, and none with HTTP/1.0.
		cl, te := 0, 0
		for _, f := range h.fields {
			switch f.kind {
			case kContentLength:
				cl++
			case kTransferEncoding:
				te++
			}
		}
		if cl > 1 || te > 1 || (cl > 0 && te > 0) || (te > 0 && h.http10) || len(h.fields) > MaxRequestFields {
			t.Fatalf("%q accepted (%v) with ambiguous framing or too many fields", in[:n], err)
		}
		if err != nil {
			return
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		writeRequestHead(w, &h, nil)
		w.Flush()
		var h2 requestHead
		if err := parseRequest(out.Bytes(), &h2); err != nil {
			t.Fatalf("forwarded head %q of %q does not parse: %v", out.Bytes(), in[:n], err)
		}
		if !bytes.Equal(h2.authority.of(h2.raw), h.authority.of(h.raw)) || h2.chunked != h.chunked ||
			h2.contentLength != h.contentLength || h2.head != h.head {
			t.Fatalf("forwarded head %q means something else than %q", out.Bytes(), in[:n])
		}
		for _, f := range h2.fields {
			// Only what the proxy re-adds: TE: trailers and chunked framing.
			if f.hop && f.kind != kTE && f.kind != kTransferEncoding {
				t.Fatalf("forwarded head %q carries a hop-by-hop field", out.Bytes())
			}
		}
	})
}

// FuzzParseResponse checks the response head parser never panics and that
// what it forwards parses again.
func FuzzParseResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
		"HTTP/1.0 204\r\nConnection: close, X\r\nX: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, _, err := scanHead(in, 0)
		if err != nil || n == 0 {
			return
		}
		var h responseHead
		if err := parseResponse(in[:n], &h, true); err != nil {
			return
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		writeResponseHead(w, &h, h.chunked, false)
		w.Flush()
		var h2 responseHead
		if err := parseResponse(out.Bytes(), &h2, true); err != nil {
			t.Fatalf("forwarded head %q does not parse: %v", out.Bytes(), err)
		}
		if h2.status != h.status || h2.chunked != h.chunked || h2.contentLength != h.contentLength {
			t.Fatalf("forwarded head %q means something else than %q", out.Bytes(), in[:n])
		}
	})
}

// FuzzChunked decodes arbitrary chunked bodies: no panic, and re-encoding
// what was re-encoded changes nothing.
func FuzzChunked(f *testing.F) {
	for _, seed := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"a;ext=1\r\n0123456789\r\n0\r\nX: y\r\n\r\n",
		"zz\r\n",
		"5\r\nhel",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		r := newReader(bytes.NewReader(in))
		defer r.release()
		err := copyChunked(w, r, nil)
		n, ok := chunkedLen(in)
		if ok && err != nil {
			t.Fatalf("chunkedLen accepts %q, the decoder fails: %v", in, err)
		}
		if ok {
			rest, _ := io.ReadAll(r)
			if len(in)-len(rest) != n {
				t.Fatalf("chunkedLen says %d bytes, the decoder read %d", n, len(in)-len(rest))
			}
		}
		if err != nil {
			return
		}
		w.Flush()
		first := append([]byte(nil), out.Bytes()...)
		var again bytes.Buffer
		w2 := bufio.NewWriter(&again)
		r2 := newReader(bytes.NewReader(first))
		defer r2.release()
		if err := copyChunked(w2, r2, nil); err != nil {
			t.Fatalf("re-encoded body %q does not decode: %v", first, err)
		}
		w2.Flush()
		if !bytes.Equal(again.Bytes(), first) {
			t.Fatalf("re-encoding is not stable: %q then %q", first, again.Bytes())
		}
	})
}
