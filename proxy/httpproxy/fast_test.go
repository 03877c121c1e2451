package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/internal/proxytest"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// rawBackend is an upstream server written against the wire, for exact
// control of what the proxy receives and sends.
type rawBackend struct {
	addr     string
	accepted atomic.Int32
}

// newRawBackend runs serve on each accepted connection (which it closes
// afterwards) until the test ends.
func newRawBackend(t testing.TB, serve func(c net.Conn, br *bufio.Reader)) *rawBackend {
	t.Helper()
	b := &rawBackend{}
	b.addr = proxytest.Serve(t, func(_ context.Context, c net.Conn) {
		b.accepted.Add(1)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		serve(c, bufio.NewReader(c))
	})
	return b
}

// readHead reads a message head and returns it verbatim.
func readHead(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for range 200 {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
	return b.String(), fmt.Errorf("head too long")
}

// dialProxy opens a raw client connection to the proxy.
func dialProxy(t *testing.T, h *harness) (net.Conn, *bufio.Reader) {
	t.Helper()
	return proxytest.Dial(t, h.addr)
}

func TestFastPathReusesUpstreamConnection(t *testing.T) {
	var newConns atomic.Int32
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	h := newHarness(t, be.Listener.Addr().String())
	c := h1Client(h.addr)
	const n = 20
	for i := range n {
		body := fmt.Sprintf("request %d", i)
		resp, err := c.Post("http://reuse.example/", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != body {
			t.Fatalf("request %d: got %q", i, got)
		}
	}
	if got := newConns.Load(); got != 1 {
		t.Fatalf("%d sequential requests used %d upstream connections, want 1", n, got)
	}
	// The response is counted once its last byte is written: the client may see it first.
	if got := eventually(func() uint64 {
		return h.metrics("reuse.example").ResponseCount(metrics.ResponseKey{Status: 200, GRPCStatus: -1})
	}, n); got != n {
		t.Fatalf("response_total = %d, want %d", got, n)
	}
}

func TestFastPathRetriesStalePooledConnection(t *testing.T) {
	closed := make(chan struct{}, 10)
	be := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		// One request per connection, then close without saying so.
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(req.Body)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b)+3, "ok:"+string(b))
		c.Close()
		closed <- struct{}{}
	})
	h := newHarness(t, be.addr)
	c, br := dialProxy(t, h)
	for i, req := range []string{
		"GET /1 HTTP/1.1\r\nHost: stale.example\r\n\r\n",
		"GET /2 HTTP/1.1\r\nHost: stale.example\r\n\r\n",                           // no body: retried
		"POST /3 HTTP/1.1\r\nHost: stale.example\r\nContent-Length: 4\r\n\r\nbody", // buffered body: retried
	} {
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "ok:") {
			t.Fatalf("request %d: %d %q (l5d-proxy-error %q)", i, resp.StatusCode, b, resp.Header.Get(pipeline.HeaderProxyError))
		}
		<-closed
		time.Sleep(20 * time.Millisecond) // let the FIN reach the pooled connection
	}
	if got := be.accepted.Load(); got != 3 {
		t.Fatalf("backend accepted %d connections, want 3", got)
	}
}

func TestFastPathResponseUntilClose(t *testing.T) {
	be := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Kind: eof\r\n\r\nhello, until the end")
	})
	h := newHarness(t, be.addr)
	c, br := dialProxy(t, h)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: eof.example\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "hello, until the end" {
		t.Fatalf("body %q, %v", b, err)
	}
	if !resp.Close {
		t.Fatal("response without length must come with Connection: close")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("client connection not closed after the response: %v", err)
	}
}

func TestFastPathNoBodyResponses(t *testing.T) {
	be := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch {
			case req.Method == http.MethodHead:
				// Describes the body a GET would get; sends none.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
			case req.URL.Path == "/204":
				io.WriteString(c, "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n")
			case req.URL.Path == "/304":
				io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n")
			default:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
			}
		}
	})
	h := newHarness(t, be.addr)
	c, br := dialProxy(t, h)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"HEAD", "/", 200}, {"GET", "/204", 204}, {"GET", "/304", 304}, {"GET", "/", 200},
	} {
		fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: nobody.example\r\n\r\n", tc.method, tc.path)
		resp, err := http.ReadResponse(br, &http.Request{Method: tc.method})
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
		if tc.path == "/" && tc.method == "GET" && string(b) != "next" {
			t.Fatalf("the request after the bodiless responses got %q: framing lost", b)
		}
		if tc.method == "HEAD" && resp.ContentLength != 1000 {
			t.Fatalf("HEAD Content-Length %d, want 1000", resp.ContentLength)
		}
	}
	if got := be.accepted.Load(); got != 1 {
		t.Fatalf("backend accepted %d connections, want 1", got)
	}
}

func TestFastPathEarlyHints(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("X-Final", "yes")
		io.WriteString(w, "final body")
	}))
	h := newHarness(t, be.Listener.Addr().String())
	c, br := dialProxy(t, h)
	for range 2 { // and the connection stays usable
		io.WriteString(c, "GET /page HTTP/1.1\r\nHost: hints.example\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 103 || resp.Header.Get("Link") == "" {
			t.Fatalf("first response %d, Link %q; want 103 with Link", resp.StatusCode, resp.Header.Get("Link"))
		}
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("X-Final") != "yes" || string(b) != "final body" {
			t.Fatalf("final response %d %q %q", resp.StatusCode, resp.Header.Get("X-Final"), b)
		}
	}
	m := h.metrics("hints.example")
	if got := eventually(func() uint64 { return m.ResponseCount(metrics.ResponseKey{Status: 200, GRPCStatus: -1}) }, 2); got != 2 {
		t.Fatalf("response_total{200} = %d, want 2 (interim responses are not responses)", got)
	}
}

func TestFastPathHopByHopHeaders(t *testing.T) {
	got := make(chan string, 1)
	be := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		head, err := readHead(br)
		if err != nil {
			return
		}
		got <- head
		io.WriteString(c, "HTTP/1.1 200 OK\r\n"+
			"Connection: X-Resp-Hop, keep-alive\r\n"+
			"X-Resp-Hop: drop me\r\n"+
			"Keep-Alive: timeout=5\r\n"+
			"Proxy-Connection: keep-alive\r\n"+
			"Upgrade: nothing\r\n"+
			"x-MiXeD-case:  kept as is  \r\n"+
			"Content-Length: 2\r\n\r\nok")
	})
	h := newHarness(t, be.addr)
	c, br := dialProxy(t, h)
	io.WriteString(c, "GET /hop?q=1 HTTP/1.1\r\n"+
		"Host: hop.example\r\n"+
		"Connection: X-Hop, keep-alive\r\n"+
		"X-Hop: must not pass\r\n"+
		"x-weird-CASE:\tvalue with tab \r\n"+
		"Keep-Alive: 300\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"TE: gzip, trailers\r\n"+
		"Trailer: X-Checksum\r\n"+
		"Accept: */*\r\n\r\n")
	want := "GET /hop?q=1 HTTP/1.1\r\n" +
		"Host: hop.example\r\n" +
		"x-weird-CASE:\tvalue with tab \r\n" +
		"Trailer: X-Checksum\r\n" +
		"Accept: */*\r\n" +
		"TE: trailers\r\n\r\n"
	select {
	case head := <-got:
		if head != want {
			t.Fatalf("backend got head\n%q\nwant\n%q", head, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("backend got no request")
	}
	respHead, err := readHead(br)
	if err != nil {
		t.Fatal(err)
	}
	wantResp := "HTTP/1.1 200 OK\r\nx-MiXeD-case:  kept as is  \r\nContent-Length: 2\r\n\r\n"
	if respHead != wantResp {
		t.Fatalf("client got head\n%q\nwant\n%q", respHead, wantResp)
	}
}

func TestFastPathAbsoluteFormTarget(t *testing.T) {
	got := make(chan string, 1)
	be := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		head, err := readHead(br)
		if err != nil {
			return
		}
		got <- head
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	h := newHarness(t, be.addr)
	c, br := dialProxy(t, h)
	io.WriteString(c, "GET http://abs.example:8080?x=1 HTTP/1.1\r\nHost: other.example\r\nX-A: 1\r\n\r\n")
	if head := <-got; head != "GET /?x=1 HTTP/1.1\r\nHost: abs.example:8080\r\nX-A: 1\r\n\r\n" {
		t.Fatalf("backend got %q", head)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	if n := h.metrics("abs.example:8080").Requests(); n != 1 {
		t.Fatalf("request_total{authority=abs.example:8080} = %d, want 1", n)
	}
}

func TestFastPathFullDuplexEcho(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		_, _ = io.Copy(w, r.Body)
	}))
	h := newHarness(t, be.Listener.Addr().String())
	body := make([]byte, 3<<20)
	_, _ = rand.Read(body)
	for _, chunked := range []bool{true, false} {
		c, br := dialProxy(t, h)
		// Send the body while reading the echo: neither side may wait for the other.
		errc := make(chan error, 1)
		go func() {
			if chunked {
				io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: duplex.example\r\nTransfer-Encoding: chunked\r\n\r\n")
				for b := body; len(b) > 0; {
					n := min(len(b), 50000)
					fmt.Fprintf(c, "%x\r\n", n)
					c.Write(b[:n])
					io.WriteString(c, "\r\n")
					b = b[n:]
				}
				_, err := io.WriteString(c, "0\r\n\r\n")
				errc <- err
				return
			}
			fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: duplex.example\r\nContent-Length: %d\r\n\r\n", len(body))
			_, err := c.Write(body)
			errc <- err
		}()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("chunked=%v: %v after %d bytes", chunked, err, len(got))
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("chunked=%v: echo mismatch, %d bytes back", chunked, len(got))
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		// The connection is still usable.
		io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: duplex.example\r\nContent-Length: 3\r\n\r\nabc")
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != "abc" {
			t.Fatalf("next request got %q", b)
		}
	}
}

// TestFastPathHandOffMidConnection checks a request handed off after one
// on the fast path: the general-purpose server answers it and closes the
// connection (Connection: close), so that every request head on a client
// connection goes through the fast path's checks; the client goes on on a
// new connection.
func TestFastPathHandOffMidConnection(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(b))
	}))
	h := newHarness(t, be.Listener.Addr().String())
	c, br := dialProxy(t, h)
	// Fast path, then a request it hands off (Expect), then more on a new connection.
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: mid.example\r\n\r\n")
	for i, want := range []string{"GET /a 0", "POST /b 5", "GET /c 0"} {
		switch i {
		case 1:
			io.WriteString(c, "POST /b HTTP/1.1\r\nHost: mid.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
			line, _ := br.ReadString('\n')
			if !strings.HasPrefix(line, "HTTP/1.1 100") {
				t.Fatalf("want 100 Continue, got %q", line)
			}
			br.ReadString('\n')
			io.WriteString(c, "hello")
		case 2:
			c, br = dialProxy(t, h)
			io.WriteString(c, "GET /c HTTP/1.1\r\nHost: mid.example\r\n\r\n")
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want {
			t.Fatalf("request %d: got %q, want %q", i, b, want)
		}
		if handedOff := i == 1; resp.Close != handedOff {
			t.Errorf("request %d: Connection: close is %v, want %v", i, resp.Close, handedOff)
		}
		if i == 1 {
			if _, err := br.ReadByte(); err == nil {
				t.Errorf("connection open after the handed-off request")
			}
		}
	}
	if n := h.metrics("mid.example").Requests(); n != 3 {
		t.Fatalf("request_total = %d, want 3", n)
	}
}

func TestFastPathPipelinedRequests(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	h := newHarness(t, be.Listener.Addr().String())
	c, br := dialProxy(t, h)
	var all strings.Builder
	for i := range 5 {
		fmt.Fprintf(&all, "GET /p%d HTTP/1.1\r\nHost: pipe.example\r\n\r\n", i)
	}
	io.WriteString(c, all.String())
	for i := range 5 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprintf("/p%d", i); string(b) != want {
			t.Fatalf("response %d: %q, want %q", i, b, want)
		}
	}
}

func TestFastPathUpstreamFailureMidResponse(t *testing.T) {
	be := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut short")
	})
	h := newHarness(t, be.addr)
	c, br := dialProxy(t, h)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: cut.example\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("truncated response read without error: the client connection must close")
	}
	k := metrics.ResponseKey{Status: 200, GRPCStatus: -1, Failure: true, Error: "unexpected"}
	testkit.EventuallyTrue(t, 5*time.Second, "response_total{200, failure, unexpected} recorded", func() bool {
		return h.metrics("cut.example").ResponseCount(k) == 1
	})
}

func TestFastPathEarlyResponseCutsRequestBody(t *testing.T) {
	done := make(chan struct{})
	be := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readHead(br); err != nil {
			return
		}
		// Refuse without reading the body, and keep the connection open.
		io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\n\r\nbig")
		<-done
	})
	t.Cleanup(func() { close(done) }) // runs before the backend's cleanup
	h := newHarness(t, be.addr)
	c, br := dialProxy(t, h)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: early.example\r\nContent-Length: 10000000\r\n\r\n")
	c.Write(make([]byte, 100000))
	start := time.Now()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || string(b) != "big" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
	// The rest of the body will not be read: the proxy closes the connection.
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("client connection left open with an unread request body")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v: the response waited for the request body", d)
	}
	k := metrics.ResponseKey{Status: 413, GRPCStatus: -1}
	if got := eventually(func() uint64 { return h.metrics("early.example").ResponseCount(k) }, 1); got != 1 {
		t.Fatalf("response_total{413} = %d, want 1", got)
	}
}

func TestFastPathClientGoneMidBody(t *testing.T) {
	be, gotErr := bodyReadingBackend(t)
	h := newHarness(t, be.addr)
	c, _ := dialProxy(t, h)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: gone.example\r\nContent-Length: 1000000\r\n\r\npartial")
	time.Sleep(20 * time.Millisecond)
	c.Close()
	expectBodyAborted(t, gotErr)
	// The client cancelled: not a failure of the server.
	k := metrics.ResponseKey{Status: 502, GRPCStatus: -1, Error: "cancelled"}
	testkit.EventuallyTrue(t, 5*time.Second, "response_total{502, cancelled} recorded", func() bool {
		return h.metrics("gone.example").ResponseCount(k) == 1
	})
}

// TestFastPathRejectsLargeHeads checks the header limits: more than 100
// fields or a head over 64 KiB is answered 431 with l5d-proxy-error, the
// connection closes and nothing is forwarded.
func TestFastPathRejectsLargeHeads(t *testing.T) {
	var served atomic.Int32
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprintf(w, "%d %d", len(r.Header.Get("X-Big")), len(r.Header["X-Many"]))
	}))
	h := newHarness(t, be.Listener.Addr().String())
	for _, tc := range []struct {
		name   string
		fields string
		status int
		body   string
	}{
		{"99 more fields (100 in all)", strings.Repeat("X-Many: m\r\n", 99), 200, "0 99"},
		{"101 fields", strings.Repeat("X-Many: m\r\n", 100), 431, ""},
		{"5000 fields", strings.Repeat("X-Many: m\r\n", 5000), 431, ""},
		{"line under 64 KiB", "X-Big: " + strings.Repeat("b", 60<<10) + "\r\n", 200, fmt.Sprintf("%d 0", 60<<10)},
		{"line over 64 KiB", "X-Big: " + strings.Repeat("b", 70<<10) + "\r\n", 431, ""},
		{"1000 KiB field", "X-Big: " + strings.Repeat("b", 1000<<10) + "\r\n", 431, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := served.Load()
			c, br := dialProxy(t, h)
			wrote := make(chan struct{})
			go func() { // the server may answer before reading it all
				defer close(wrote)
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: big.example\r\n"+tc.fields+"\r\n")
			}()
			defer func() {
				c.Close()
				<-wrote
			}()
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || (tc.body != "" && string(b) != tc.body) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, trimTo(string(b), 100), tc.status, tc.body)
			}
			if tc.status == 200 {
				return
			}
			if resp.Header.Get(pipeline.HeaderProxyError) == "" || !resp.Close {
				t.Errorf("answer without l5d-proxy-error or Connection: close: %v", resp.Header)
			}
			if served.Load() != before {
				t.Errorf("the request was forwarded")
			}
			if _, err := br.ReadByte(); err == nil {
				t.Errorf("connection still open after the answer")
			}
		})
	}
}

// TestFastPathRejectsBadRequests checks requests the fast path answers 400
// itself, closing the connection: nothing reaches the application, not even
// the bytes after the request (request smuggling, RFC 9112 §6.3).
func TestFastPathRejectsBadRequests(t *testing.T) {
	var served atomic.Int32
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.Copy(io.Discard, r.Body)
	}))
	h := newHarness(t, be.Listener.Addr().String())
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: bad.example\r\n\r\n"
	for _, tc := range []struct {
		name, req string
	}{
		{"length and chunked", "POST / HTTP/1.1\r\nHost: bad.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"chunked and length", "POST / HTTP/1.1\r\nHost: bad.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
		{"length and chunked, handed off otherwise", "POST / HTTP/1.1\r\nHost: bad.example\r\nExpect: 100-continue\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"HTTP/1.0 with chunked", "POST / HTTP/1.0\r\nHost: bad.example\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"chunked not last", "POST / HTTP/1.1\r\nHost: bad.example\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"},
		{"identity coding", "POST / HTTP/1.1\r\nHost: bad.example\r\nTransfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n"},
		{"differing lengths", "POST / HTTP/1.1\r\nHost: bad.example\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n"},
		{"invalid length", "POST / HTTP/1.1\r\nHost: bad.example\r\nContent-Length: -1\r\n\r\n"},
		{"malformed request line", "GET /a b HTTP/1.1\r\nHost: bad.example\r\n\r\n"},
		{"unknown version", "GET / HTTP/1.2\r\nHost: bad.example\r\n\r\n"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: bad.example\r\nX: a\r\n b\r\n\r\n"},
		{"bare LF", "GET / HTTP/1.1\nHost: bad.example\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := served.Load()
			c, br := dialProxy(t, h)
			io.WriteString(c, tc.req+smuggled)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(pipeline.HeaderProxyError) == "" || !resp.Close {
				t.Fatalf("got %d %v, want 400 with l5d-proxy-error and Connection: close", resp.StatusCode, resp.Header)
			}
			if _, err := br.ReadByte(); err == nil {
				t.Errorf("connection still open after the answer")
			}
			if n := served.Load() - before; n != 0 {
				t.Errorf("%d requests reached the application", n)
			}
		})
	}
}

// TestFastPathMalformedChunkedBody checks that a broken chunked request
// body is answered 400, counted as a response, not a server failure.
func TestFastPathMalformedChunkedBody(t *testing.T) {
	be, _ := bodyReadingBackend(t)
	h := newHarness(t, be.addr)
	c, br := dialProxy(t, h)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: chunk.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(pipeline.HeaderProxyError) == "" {
		t.Fatalf("got %d %v, want 400 with l5d-proxy-error", resp.StatusCode, resp.Header)
	}
	k := metrics.ResponseKey{Status: 400, GRPCStatus: -1}
	if got := eventually(func() uint64 { return h.metrics("chunk.example").ResponseCount(k) }, 1); got != 1 {
		t.Fatalf("response_total{400, success} = %d, want 1", got)
	}
}

func trimTo(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func TestFastPathUpstreamGoneMidUpload(t *testing.T) {
	be := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readHead(br); err != nil {
			return
		}
		io.CopyN(io.Discard, br, 1000)
		// Returning closes the connection without an answer.
	})
	h := newHarness(t, be.addr)
	c, br := dialProxy(t, h)
	// The client sends part of its body, then waits: the proxy's body copy
	// is blocked reading from the client when the upstream goes away.
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: upgone.example\r\nContent-Length: 10000000\r\n\r\n")
	c.Write(make([]byte, 1000))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(pipeline.HeaderProxyError) == "" || !resp.Close {
		t.Fatalf("got %d, l5d-proxy-error %q, close %v; want 502 and close", resp.StatusCode, resp.Header.Get(pipeline.HeaderProxyError), resp.Close)
	}
	m := h.metrics("upgone.example")
	if n := eventually(func() uint64 {
		return m.ResponseCount(metrics.ResponseKey{Status: 502, GRPCStatus: -1, Failure: true, Error: "cancelled"})
	}, 0); n != 0 {
		t.Fatal("an upstream failure was recorded as the client cancelling")
	}
	if n := eventually(func() uint64 {
		return m.ResponseCount(metrics.ResponseKey{Status: 502, GRPCStatus: -1, Failure: true, Error: "unexpected"})
	}, 1); n != 1 {
		t.Fatalf("response_total{502, unexpected} = %d, want 1", n)
	}
}

// TestClientIDHeader checks both HTTP paths of an inbound proxy: only a
// verified client identity reaches the application in l5d-client-id.
func TestClientIDHeader(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%q", r.Header.Values(pipeline.HeaderClientID))
	}))
	reg := metrics.NewRegistry()
	srv := newTestServer(testOptions{Direction: transport.Inbound, Resolver: discovery.OriginalDst{NoTLSReason: "loopback"},
		Dialer: &transport.Dialer{Direction: transport.Inbound, Metrics: reg, Timeout: time.Second}, Metrics: reg})
	target := netip.MustParseAddrPort(be.Listener.Addr().String())
	for _, tc := range []struct {
		name string
		tls  transport.TLS
		want string
	}{
		{"mTLS", transport.TLS{Mode: transport.TLSMeshed, ID: "web.ns.serviceaccount.identity.linkerd.cluster.local"}, `["web.ns.serviceaccount.identity.linkerd.cluster.local"]`},
		{"plaintext", transport.NoIdentity("no_tls_from_remote"), `[]`},
	} {
		for _, path := range []string{"fast", "net/http"} {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				client, proxySide := net.Pipe()
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() {
					defer close(done)
					serveDetected(ctx, srv, proxySide, &pipeline.Conn{OrigDst: target, TLS: tc.tls})
				}()
				defer func() {
					client.Close()
					cancel()
					<-done
				}()
				_ = client.SetDeadline(time.Now().Add(5 * time.Second))
				req := "GET / HTTP/1.1\r\nHost: app\r\nl5d-client-id: forged\r\n\r\n"
				if path == "net/http" { // handed off by the fast path
					req = "GET / HTTP/1.1\r\nHost: app\r\nl5d-client-id: forged\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"
				}
				go io.WriteString(client, req)
				resp, err := http.ReadResponse(bufio.NewReader(client), nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				if string(b) != tc.want {
					t.Fatalf("application saw l5d-client-id %s, want %s", b, tc.want)
				}
			})
		}
	}
	srv.Close()
	srv.CloseIdleConnections()
}

// eventually polls count until it reaches want or 5 seconds pass, and
// returns the last value (callers compare it with want: a count past want
// is reported as it is).
func eventually(count func() uint64, want uint64) uint64 {
	var got uint64
	_ = testkit.Poll(5*time.Second, func() error {
		if got = count(); got != want {
			return fmt.Errorf("%d, want %d", got, want)
		}
		return nil
	})
	return got
}
