package detect

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// captureClientHello runs a crypto/tls client against one end of a net.Pipe
// and returns the first TLS record it writes (its ClientHello).
func captureClientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	client, server := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		cfg := &tls.Config{ServerName: serverName, InsecureSkipVerify: true} // the test client never verifies
		_ = tls.Client(client, cfg).HandshakeContext(ctx)
	}()
	defer func() {
		_ = server.Close()
		_ = client.Close()
		<-done
	}()
	if err := server.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	hdr := make([]byte, tlsRecordHeaderLen)
	if _, err := io.ReadFull(server, hdr); err != nil {
		t.Fatalf("read record header: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[3:5]))
	if _, err := io.ReadFull(server, body); err != nil {
		t.Fatalf("read record body: %v", err)
	}
	return append(hdr, body...)
}

// fragmentHello re-frames a single-record ClientHello into records carrying
// at most size bytes of the handshake message each.
func fragmentHello(t testing.TB, rec []byte, size int) []byte {
	t.Helper()
	if size <= 0 {
		t.Fatalf("fragment size %d", size)
	}
	msg := rec[tlsRecordHeaderLen:]
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, tlsRecordTypeHandshake, rec[1], rec[2], byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// corruptExtensionsLength makes the extensions vector of a ClientHello
// record claim one byte more than it has.
func corruptExtensionsLength(t testing.TB, rec []byte) []byte {
	t.Helper()
	out := bytes.Clone(rec)
	p := tlsRecordHeaderLen + tlsHandshakeHeaderLen + tlsClientHelloFixedBytes
	p += 1 + int(out[p])                           // session id
	p += 2 + int(binary.BigEndian.Uint16(out[p:])) // cipher suites
	p += 1 + int(out[p])                           // compression methods
	n := binary.BigEndian.Uint16(out[p:])
	binary.BigEndian.PutUint16(out[p:], n+1)
	return out
}

func tlsRecord(recVersionMinor byte, payload ...byte) []byte {
	return append([]byte{tlsRecordTypeHandshake, 3, recVersionMinor, byte(len(payload) >> 8), byte(len(payload))}, payload...)
}

// synthHello builds a minimal ClientHello record with the given extensions.
func synthHello(exts []byte) []byte {
	body := make([]byte, tlsClientHelloFixedBytes)
	body[0], body[1] = 3, 3
	body = append(body, 0)                // session id
	body = append(body, 0, 2, 0x13, 0x01) // one cipher suite
	body = append(body, 1, 0)             // null compression
	if exts != nil {
		body = append(body, byte(len(exts)>>8), byte(len(exts)))
		body = append(body, exts...)
	}
	msg := append([]byte{tlsHandshakeClientHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	return tlsRecord(1, msg...)
}

func sniExt(names ...string) []byte {
	var list []byte
	for _, n := range names {
		list = append(list, tlsServerNameTypeHost, byte(len(n)>>8), byte(len(n)))
		list = append(list, n...)
	}
	data := append([]byte{byte(len(list) >> 8), byte(len(list))}, list...)
	return append([]byte{0, tlsExtensionServerName, byte(len(data) >> 8), byte(len(data))}, data...)
}

type classifyCase struct {
	name string
	in   []byte
	want Result
	done bool
}

func classifyCases(t testing.TB) []classifyCase {
	withSNI := captureClientHello(t, "web.emojivoto.svc.cluster.local")
	noSNI := captureClientHello(t, "")
	ipSNI := captureClientHello(t, "10.1.2.3") // IP addresses are never sent as SNI
	long := "GET /" + strings.Repeat("a", MaxRequestLine) + " HTTP/1.1\r\n"
	atCap := "GET /" + strings.Repeat("a", MaxRequestLine-len("GET / HTTP/1.1\r\n")) + " HTTP/1.1\r\n"
	overCap := "GET /a" + atCap[len("GET /"):]
	// A message claiming to be far larger than MaxPeek, fragmented.
	huge := tlsRecord(3, tlsHandshakeClientHello, 0x01, 0x00, 0x00, 3, 3)

	tlsSNI := func(s string) Result { return Result{Protocol: TLS, SNI: s} }
	opaque := Result{Protocol: Opaque}
	h1 := Result{Protocol: HTTP1}
	return []classifyCase{
		// Need more bytes.
		{name: "empty", in: nil},
		{name: "one letter", in: []byte("G")},
		{name: "partial method", in: []byte("GE")},
		{name: "method", in: []byte("GET")},
		{name: "P could be preface or POST", in: []byte("P")},
		{name: "half preface", in: h2Preface[:len(h2Preface)/2]},
		{name: "preface minus one", in: h2Preface[:len(h2Preface)-1]},
		{name: "tls first byte", in: []byte{0x16}},
		{name: "tls record version", in: []byte{0x16, 3, 1}},
		{name: "tls record header", in: withSNI[:5]},
		{name: "tls handshake header", in: withSNI[:8]},
		{name: "tls hello minus one", in: withSNI[:len(withSNI)-1]},
		{name: "fragmented first record only", in: fragmentHello(t, withSNI, 100)[:105]},

		// HTTP/1: a standard method and a space are enough, even when the
		// request line turns out malformed (the HTTP server answers 400).
		{name: "malformed target with known method", in: []byte("GET /a b HTTP/1.1\r\n"), want: h1, done: true},
		{name: "known method, space and slash", in: []byte("DELETE /"), want: h1, done: true},
		{name: "redis inline command", in: []byte("GET key\r\n"), want: opaque, done: true},
		{name: "known method, space, no slash yet", in: []byte("GET "), want: Result{}, done: false},
		{name: "extension method needs the whole line", in: []byte("M-SEARCH * HTTP/1."), want: Result{}, done: false},
		{name: "lowercase method is not known", in: []byte("get /a b HTTP/1.1\r\n"), want: opaque, done: true},
		{name: "extra space before version", in: []byte("GET /  HTTP/1.1\r\n"), want: h1, done: true},
		{name: "lowercase http", in: []byte("GET / http/1.1\r\n"), want: h1, done: true},
		{name: "bare LF", in: []byte("GET / HTTP/1.1\n"), want: h1, done: true},
		{name: "http/1.2", in: []byte("GET / HTTP/1.2\r\n"), want: h1, done: true},
		{name: "http/2.0 request line", in: []byte("GET / HTTP/2.0\r\n"), want: h1, done: true},
		{name: "control char in target", in: []byte("GET /\x01"), want: h1, done: true},
		{name: "long target below cap", in: []byte(long[:1000]), want: h1, done: true},
		{name: "POST partial", in: []byte("POST /submit HTT"), want: h1, done: true},
		{name: "missing LF", in: []byte("GET / HTTP/1.1\r"), want: h1, done: true},
		{name: "partial version", in: []byte("GET / HTTP/1."), want: h1, done: true},
		{name: "partial target", in: []byte("GET /ind"), want: h1, done: true},
		{name: "get http/1.1", in: []byte("GET / HTTP/1.1\r\n"), want: h1, done: true},
		{name: "get with headers", in: []byte("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"), want: h1, done: true},
		{name: "http/1.0", in: []byte("HEAD /index.html HTTP/1.0\r\n"), want: h1, done: true},
		{name: "post with query", in: []byte("POST /a?b=c&d=%20 HTTP/1.1\r\n"), want: h1, done: true},
		{name: "connect authority", in: []byte("CONNECT example.com:443 HTTP/1.1\r\n"), want: h1, done: true},
		{name: "options star", in: []byte("OPTIONS * HTTP/1.1\r\n"), want: h1, done: true},
		{name: "extension method", in: []byte("M-SEARCH * HTTP/1.1\r\n"), want: h1, done: true},
		{name: "PRI with http/1.1", in: []byte("PRI * HTTP/1.1\r\n"), want: h1, done: true},
		{name: "request line at cap", in: []byte(atCap), want: h1, done: true},

		// HTTP/2.
		{name: "preface", in: h2Preface, want: Result{Protocol: HTTP2}, done: true},
		{name: "preface and settings", in: append(bytes.Clone(h2Preface), 0, 0, 0, 4, 0, 0, 0, 0, 0), want: Result{Protocol: HTTP2}, done: true},

		// TLS.
		{name: "client hello with sni", in: withSNI, want: tlsSNI("web.emojivoto.svc.cluster.local"), done: true},
		{name: "client hello with trailing data", in: append(bytes.Clone(withSNI), 0x14, 3, 3, 0, 1, 1), want: tlsSNI("web.emojivoto.svc.cluster.local"), done: true},
		{name: "client hello without sni", in: noSNI, want: tlsSNI(""), done: true},
		{name: "client hello to ip", in: ipSNI, want: tlsSNI(""), done: true},
		{name: "fragmented hello", in: fragmentHello(t, withSNI, 100), want: tlsSNI("web.emojivoto.svc.cluster.local"), done: true},
		{name: "fragmented hello header-only first record", in: fragmentHello(t, withSNI, 4), want: tlsSNI("web.emojivoto.svc.cluster.local"), done: true},
		{name: "fragmented handshake header is unsupported", in: fragmentHello(t, withSNI, 3), want: tlsSNI(""), done: true},
		{name: "synthetic sni", in: synthHello(sniExt("a.example")), want: tlsSNI("a.example"), done: true},
		{name: "synthetic first host wins", in: synthHello(sniExt("a.example", "b.example")), want: tlsSNI("a.example"), done: true},
		{name: "synthetic no extensions", in: synthHello(nil), want: tlsSNI(""), done: true},
		{name: "synthetic duplicate sni", in: synthHello(append(sniExt("a.example"), sniExt("b.example")...)), want: tlsSNI(""), done: true},
		{name: "synthetic sni with space", in: synthHello(sniExt("a example")), want: tlsSNI(""), done: true},
		{name: "synthetic empty sni", in: synthHello(sniExt("")), want: tlsSNI(""), done: true},
		{name: "malformed extensions", in: corruptExtensionsLength(t, withSNI), want: tlsSNI(""), done: true},
		{name: "record too short for handshake header", in: tlsRecord(1, tlsHandshakeClientHello, 0), want: tlsSNI(""), done: true},
		{name: "record length over max", in: []byte{0x16, 3, 1, 0x40, 0x01, tlsHandshakeClientHello}, want: tlsSNI(""), done: true},
		{name: "truncated body", in: tlsRecord(1, tlsHandshakeClientHello, 0, 0, 2, 3, 3), want: tlsSNI(""), done: true},
		{name: "hello larger than peek", in: huge, want: tlsSNI(""), done: true},
		{name: "fragment with wrong record type", in: append(fragmentHello(t, withSNI, 100)[:105], 0x17, 3, 3, 0, 1), want: tlsSNI(""), done: true},
		{name: "ssl3 record version", in: tlsRecord(0, tlsHandshakeClientHello, 0, 0, 0), want: tlsSNI(""), done: true},

		// Opaque.
		{name: "empty target", in: []byte("GET  HTTP/1.1\r\n"), want: opaque, done: true},
		{name: "binary", in: []byte{0x00}, want: opaque, done: true},
		{name: "leading space", in: []byte(" GET"), want: opaque, done: true},
		{name: "lowercase is fine but colon is not", in: []byte("get: x"), want: opaque, done: true},
		{name: "preface mismatch", in: []byte("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), want: opaque, done: true},
		{name: "ssh banner", in: []byte("SSH-2.0-OpenSSH_9.6\r\n"), want: opaque, done: true},
		{name: "mysql-ish", in: []byte{0x4a, 0x00, 0x00, 0x00, 0x0a}, want: opaque, done: true},
		{name: "tls wrong major version", in: []byte{0x16, 2}, want: opaque, done: true},
		{name: "tls unknown minor version", in: []byte{0x16, 3, 5}, want: opaque, done: true},
		{name: "tls server hello", in: tlsRecord(3, 2, 0, 0, 0), want: opaque, done: true},
		{name: "tls application data", in: []byte{0x17, 3, 3, 0, 1, 0}, want: opaque, done: true},
		{name: "request line too long", in: []byte(long), want: h1, done: true},
		{name: "extension method line too long", in: []byte("M" + long[3:]), want: opaque, done: true},
		{name: "request line one over cap", in: []byte(overCap), want: h1, done: true},
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range classifyCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			got, done := Classify(tc.in)
			if done != tc.done || got != tc.want {
				t.Fatalf("Classify(%q) = %+v, %v; want %+v, %v", truncate(tc.in), got, done, tc.want, tc.done)
			}
			checkConsistent(t, tc.in)
		})
	}
}

// checkConsistent verifies the properties Detect relies on: once a prefix
// classifies, every longer input classifies the same; feeding the bytes
// incrementally to one classifier gives the same answers as Classify.
func checkConsistent(t *testing.T, b []byte) {
	t.Helper()
	var (
		first     Result
		firstDone bool
		inc       classifier
	)
	step := 1
	if len(b) > 4096 {
		step = 97 // keep the quadratic scan cheap for long inputs
	}
	for i := 0; i <= len(b); i += step {
		r, done := Classify(b[:i])
		ir, idone := inc.classify(b[:i])
		if r != ir || done != idone {
			t.Fatalf("prefix %d: Classify = %+v, %v; incremental = %+v, %v", i, r, done, ir, idone)
		}
		if firstDone && (!done || r != first) {
			t.Fatalf("prefix %d: decided %+v earlier, now %+v, %v", i, first, r, done)
		}
		if done && !firstDone {
			first, firstDone = r, true
		}
	}
	if len(b) >= MaxPeek {
		if _, done := Classify(b); !done {
			t.Fatalf("undecided after %d bytes (MaxPeek %d)", len(b), MaxPeek)
		}
	}
}

func TestClassifyDecidesByMaxPeek(t *testing.T) {
	inputs := map[string][]byte{
		"token chars":       bytes.Repeat([]byte("a"), MaxPeek),
		"long target":       []byte("GET /" + strings.Repeat("b", MaxPeek)),
		"small fragments":   fragmentHello(t, tlsRecord(3, append([]byte{tlsHandshakeClientHello, 0, 0x3e, 0x80}, make([]byte, 16000)...)...), 4)[:MaxPeek],
		"zero after header": append([]byte{0x16, 3, 3, 0x40, 0x00, 1, 0xff, 0xff, 0xff}, make([]byte, MaxPeek)...),
		"max record":        append([]byte{0x16, 3, 3, 0x40, 0x00, 1, 0x00, 0x3f, 0xfc}, make([]byte, MaxPeek)...)[:MaxPeek],
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			if _, done := Classify(in[:MaxPeek]); !done {
				t.Fatalf("Classify of %d bytes is undecided", MaxPeek)
			}
		})
	}
}

func TestProtocolString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Protocol
		want string
	}{
		{Opaque, "opaque"},
		{HTTP1, "http/1"},
		{HTTP2, "http/2"},
		{TLS, "tls"},
		{Protocol(42), "unknown"},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("Protocol(%d).String() = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

func BenchmarkClassify(b *testing.B) {
	inputs := []struct {
		name string
		in   []byte
	}{
		{"http1", []byte("GET /api/v1/users/12345?expand=true HTTP/1.1\r\nHost: users.default.svc.cluster.local\r\n\r\n")},
		{"http2", append(bytes.Clone(h2Preface), 0, 0, 0, 4, 0, 0, 0, 0, 0)},
		{"tls", captureClientHello(b, "users.default.svc.cluster.local")},
		{"opaque", []byte{0x4a, 0x00, 0x00, 0x00, 0x0a, '8', '.', '0'}},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.in)))
			for b.Loop() {
				if _, done := Classify(in.in); !done {
					b.Fatal("undecided")
				}
			}
		})
	}
}
