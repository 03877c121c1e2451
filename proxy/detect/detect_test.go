package detect

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer func() { _ = ln.Close() }()
	if err := ln.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	s, err := ln.AcceptTCP()
	if err != nil {
		_ = c.Close()
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		_ = s.Close()
	})
	return c, s
}

// goWrite writes chunks to w in a goroutine (with an optional pause between
// them) and returns a function that waits for it and reports its error.
func goWrite(t *testing.T, w io.Writer, pause time.Duration, chunks ...[]byte) (wait func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for i, c := range chunks {
			if i > 0 && pause > 0 {
				time.Sleep(pause)
			}
			if _, err := w.Write(c); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	return func() error { return <-errc }
}

func TestDetectReplaysPrefix(t *testing.T) {
	head := []byte("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
	body := []byte("hello world")
	tests := []struct {
		name   string
		chunks [][]byte
		want   Protocol
	}{
		{"one write", [][]byte{append(bytes.Clone(head), body...)}, HTTP1},
		{"byte by byte request line", splitBytes(head[:10], head[10:], body), HTTP1},
		{"preface then frames", [][]byte{h2Preface[:5], h2Preface[5:], {0, 0, 0, 4, 0, 0, 0, 0, 0}}, HTTP2},
		{"opaque", [][]byte{[]byte("\x00binary"), []byte("more")}, Opaque},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t)
			all := bytes.Join(tc.chunks, nil)
			wait := goWrite(t, client, time.Millisecond, tc.chunks...)

			res, conn, err := Detect(context.Background(), server, 5*time.Second)
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if res.Protocol != tc.want || res.TimedOut {
				t.Fatalf("Detect = %+v, want %v", res, tc.want)
			}
			if p := conn.Peeked(); len(p) == 0 || !bytes.HasPrefix(all, p) {
				t.Fatalf("Peeked() = %q, want a non-empty prefix of the stream", p)
			}
			if conn.Unwrap() != server {
				t.Fatalf("Unwrap() is not the accepted connection")
			}
			if err := wait(); err != nil {
				t.Fatalf("write: %v", err)
			}
			if err := client.CloseWrite(); err != nil {
				t.Fatalf("close write: %v", err)
			}
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("read all: %v", err)
			}
			if !bytes.Equal(got, all) {
				t.Fatalf("read %q, want %q", got, all)
			}
			if len(conn.Peeked()) != 0 {
				t.Fatalf("Peeked() after reading everything = %q", conn.Peeked())
			}
		})
	}
}

func splitBytes(parts ...[]byte) [][]byte {
	var out [][]byte
	for i, p := range parts {
		if i == 0 {
			for _, c := range p {
				out = append(out, []byte{c})
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

func TestDetectWriteToCopiesPrefixAndRest(t *testing.T) {
	client, server := tcpPair(t)
	stream := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nrest-of-stream")
	wait := goWrite(t, client, 0, stream)
	_, conn, err := Detect(context.Background(), server, 5*time.Second)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if err := wait(); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := client.CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
	var out bytes.Buffer
	n, err := io.Copy(&out, conn)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if n != int64(len(stream)) || !bytes.Equal(out.Bytes(), stream) {
		t.Fatalf("copied %d bytes %q, want %q", n, out.Bytes(), stream)
	}
}

func TestDetectTLSHandshakeCompletesThroughConn(t *testing.T) {
	cert := selfSignedCert(t, "svc.example")
	client, server := net.Pipe()
	t.Cleanup(func() {
		_ = client.Close()
		_ = server.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	var clientErr error
	var echoed []byte
	wg.Go(func() {
		pool := x509.NewCertPool()
		pool.AddCert(cert.Leaf)
		tc := tls.Client(client, &tls.Config{ServerName: "svc.example", RootCAs: pool})
		if clientErr = tc.HandshakeContext(ctx); clientErr != nil {
			return
		}
		if _, clientErr = tc.Write([]byte("ping")); clientErr != nil {
			return
		}
		echoed = make([]byte, 4)
		_, clientErr = io.ReadFull(tc, echoed)
		// Close the pipe, not tc: nobody reads a close_notify here.
		_ = client.Close()
	})

	res, conn, err := Detect(ctx, server, 5*time.Second)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if want := (Result{Protocol: TLS, SNI: "svc.example"}); res != want {
		t.Fatalf("Detect = %+v, want %+v", res, want)
	}
	ts := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err := ts.HandshakeContext(ctx); err != nil {
		t.Fatalf("server handshake over replayed conn: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(ts, buf); err != nil {
		t.Fatalf("server read: %v", err)
	}
	if _, err := ts.Write(buf); err != nil {
		t.Fatalf("server write: %v", err)
	}
	wg.Wait()
	if clientErr != nil {
		t.Fatalf("client: %v", clientErr)
	}
	if string(echoed) != "ping" {
		t.Fatalf("echoed %q, want ping", echoed)
	}
}

func selfSignedCert(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func TestDetectTimeout(t *testing.T) {
	tests := []struct {
		name   string
		first  []byte
		prefix string
	}{
		{"no bytes", nil, ""},
		{"partial method", []byte("GE"), "GE"},
		{"partial preface", h2Preface[:10], string(h2Preface[:10])},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t)
			if len(tc.first) > 0 {
				if _, err := client.Write(tc.first); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			start := time.Now()
			res, conn, err := Detect(context.Background(), server, 50*time.Millisecond)
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if elapsed := time.Since(start); elapsed < 50*time.Millisecond || elapsed > 5*time.Second {
				t.Fatalf("Detect returned after %v, want about 50ms", elapsed)
			}
			if want := (Result{Protocol: Opaque, TimedOut: true}); res != want {
				t.Fatalf("Detect = %+v, want %+v", res, want)
			}
			if string(conn.Peeked()) != tc.prefix {
				t.Fatalf("Peeked() = %q, want %q", conn.Peeked(), tc.prefix)
			}
			// The deadline must be cleared: a later read waits for data
			// instead of failing at once.
			wait := goWrite(t, client, 0, []byte("T / HTTP/1.1\r\n"))
			if err := wait(); err != nil {
				t.Fatalf("write: %v", err)
			}
			if err := client.CloseWrite(); err != nil {
				t.Fatalf("close write: %v", err)
			}
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("read after timeout: %v", err)
			}
			if want := tc.prefix + "T / HTTP/1.1\r\n"; string(got) != want {
				t.Fatalf("read %q, want %q", got, want)
			}
		})
	}
}

func TestDetectEOF(t *testing.T) {
	tests := []struct {
		name string
		sent string
	}{
		{"nothing", ""},
		{"partial request", "M-SEARCH /x HTTP/1"},
		{"partial tls", "\x16\x03\x01\x02\x00\x01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t)
			if _, err := client.Write([]byte(tc.sent)); err != nil {
				t.Fatalf("write: %v", err)
			}
			if err := client.CloseWrite(); err != nil {
				t.Fatalf("close write: %v", err)
			}
			res, conn, err := Detect(context.Background(), server, 5*time.Second)
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if want := (Result{Protocol: Opaque}); res != want {
				t.Fatalf("Detect = %+v, want %+v", res, want)
			}
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if string(got) != tc.sent {
				t.Fatalf("read %q, want %q", got, tc.sent)
			}
		})
	}
}

func TestDetectContextCancel(t *testing.T) {
	t.Run("while reading", func(t *testing.T) {
		client, server := tcpPair(t)
		ctx, cancel := context.WithCancel(context.Background())
		timer := time.AfterFunc(20*time.Millisecond, cancel)
		defer timer.Stop()
		start := time.Now()
		_, conn, err := Detect(ctx, server, time.Minute)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Detect error = %v, want context.Canceled", err)
		}
		if conn != nil {
			t.Fatalf("Detect returned a Conn with an error")
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Fatalf("Detect took %v after cancel", elapsed)
		}
		// The past deadline that interrupted the read has been cleared.
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatalf("write: %v", err)
		}
		if n, err := server.Read(make([]byte, 1)); n != 1 || err != nil {
			t.Fatalf("read after cancelled Detect = %d, %v", n, err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		_, server := tcpPair(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := Detect(ctx, server, time.Minute); !errors.Is(err, context.Canceled) {
			t.Fatalf("Detect error = %v, want context.Canceled", err)
		}
	})
	t.Run("cancel after detection has no effect", func(t *testing.T) {
		client, server := tcpPair(t)
		ctx, cancel := context.WithCancel(context.Background())
		if _, err := client.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
			t.Fatalf("write: %v", err)
		}
		res, conn, err := Detect(ctx, server, time.Minute)
		cancel()
		if err != nil || res.Protocol != HTTP1 {
			t.Fatalf("Detect = %+v, %v", res, err)
		}
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatalf("write: %v", err)
		}
		buf := make([]byte, 32)
		n, err := io.ReadAtLeast(conn, buf, len("GET / HTTP/1.1\r\nx"))
		if err != nil || string(buf[:n]) != "GET / HTTP/1.1\r\nx" {
			t.Fatalf("read %q, %v", buf[:n], err)
		}
	})
}

// scriptedConn is a net.Conn whose reads follow a script; it records read
// deadlines.
type scriptedConn struct {
	net.Conn // nil; only the methods below are used
	reads    []scriptedRead
	pos      int
	src      *bytes.Reader // for benchmarks: serves bytes, then EOF

	deadlines []time.Time
	closed    bool
}

type scriptedRead struct {
	data string
	err  error
}

func (c *scriptedConn) Read(p []byte) (int, error) {
	if c.src != nil {
		return c.src.Read(p)
	}
	if c.pos >= len(c.reads) {
		return 0, io.EOF
	}
	r := c.reads[c.pos]
	c.pos++
	return copy(p, r.data), r.err
}

func (c *scriptedConn) SetReadDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

func (c *scriptedConn) Close() error {
	c.closed = true
	return nil
}

func TestDetectReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	tests := []struct {
		name    string
		reads   []scriptedRead
		want    Result
		prefix  string
		wantErr error
	}{
		{name: "error before any byte", reads: []scriptedRead{{err: boom}}, wantErr: boom},
		{name: "error with the first bytes", reads: []scriptedRead{{data: "GE", err: boom}}, want: Result{Protocol: Opaque}, prefix: "GE"},
		{name: "error after some bytes", reads: []scriptedRead{{data: "GE"}, {err: boom}}, want: Result{Protocol: Opaque}, prefix: "GE"},
		{name: "decided with error", reads: []scriptedRead{{data: "GET / HTTP/1.1\r\n", err: io.EOF}}, want: Result{Protocol: HTTP1}, prefix: "GET / HTTP/1.1\r\n"},
		{name: "deadline error", reads: []scriptedRead{{data: "G"}, {err: os.ErrDeadlineExceeded}}, want: Result{Protocol: Opaque, TimedOut: true}, prefix: "G"},
		{name: "no progress", reads: repeatReads(scriptedRead{}, 200), wantErr: io.ErrNoProgress},
		{name: "empty reads then data", reads: append(repeatReads(scriptedRead{}, 5), scriptedRead{data: "\x00"}), want: Result{Protocol: Opaque}, prefix: "\x00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := &scriptedConn{reads: tc.reads}
			res, conn, err := Detect(context.Background(), sc, time.Second)
			if len(sc.deadlines) != 2 || sc.deadlines[0].IsZero() || !sc.deadlines[1].IsZero() {
				t.Fatalf("read deadlines %v, want one set and then cleared", sc.deadlines)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || conn != nil {
					t.Fatalf("Detect = %v, %v; want error %v", conn, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if res != tc.want || string(conn.Peeked()) != tc.prefix {
				t.Fatalf("Detect = %+v with prefix %q, want %+v with %q", res, conn.Peeked(), tc.want, tc.prefix)
			}
		})
	}
}

func repeatReads(r scriptedRead, n int) []scriptedRead {
	out := make([]scriptedRead, n)
	for i := range out {
		out[i] = r
	}
	return out
}

func TestDetectNoTimeoutSetsNoDeadline(t *testing.T) {
	sc := &scriptedConn{reads: []scriptedRead{{data: "GET / HTTP/1.1\r\n"}}}
	if _, _, err := Detect(context.Background(), sc, 0); err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if len(sc.deadlines) != 1 || !sc.deadlines[0].IsZero() {
		t.Fatalf("read deadlines %v, want only the final clear", sc.deadlines)
	}
}

func TestConnCloseWrite(t *testing.T) {
	t.Run("tcp half-closes", func(t *testing.T) {
		client, server := tcpPair(t)
		c := &Conn{Conn: server}
		if err := c.CloseWrite(); err != nil {
			t.Fatalf("CloseWrite: %v", err)
		}
		if err := client.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatalf("set deadline: %v", err)
		}
		if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("peer read = %d, %v; want EOF", n, err)
		}
		// The read side still works.
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatalf("write: %v", err)
		}
		buf := make([]byte, 1)
		if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'x' {
			t.Fatalf("read after CloseWrite = %q, %v", buf, err)
		}
	})
	t.Run("without half-close it closes", func(t *testing.T) {
		sc := &scriptedConn{}
		c := &Conn{Conn: sc}
		if err := c.CloseWrite(); err != nil {
			t.Fatalf("CloseWrite: %v", err)
		}
		if !sc.closed {
			t.Fatalf("underlying conn not closed")
		}
	})
}

func TestConnReadSmallBuffers(t *testing.T) {
	sc := &scriptedConn{src: bytes.NewReader([]byte("tail"))}
	c := &Conn{Conn: sc, prefix: []byte("head")}
	var got []byte
	buf := make([]byte, 3)
	for range 10 {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	if string(got) != "headtail" {
		t.Fatalf("read %q, want headtail", got)
	}
}

func BenchmarkDetect(b *testing.B) {
	inputs := []struct {
		name string
		in   []byte
	}{
		{"http1", []byte("GET /api/v1/users/12345 HTTP/1.1\r\nHost: users.default.svc.cluster.local\r\n\r\n")},
		{"tls", captureClientHello(b, "users.default.svc.cluster.local")},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			sc := &scriptedConn{src: bytes.NewReader(in.in)}
			for b.Loop() {
				sc.src.Reset(in.in)
				sc.deadlines = sc.deadlines[:0]
				if _, _, err := Detect(ctx, sc, 10*time.Second); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
