package httpproxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzHTTPFront sends arbitrary bytes to the proxy's HTTP server as a client
// connection, through the entry point inbound and outbound use (the HTTP/1.1
// fast path, handing off to net/http). Whatever arrives, the proxy must not
// crash, must answer within bounds or close, and must keep serving
// well-formed requests afterwards.
func FuzzHTTPFront(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET http://other/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x01\x05\x00\x00\x00\x01garbage-hpack-block",
		"GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 9000) + "\r\n\r\n",
		// Fast path: pipelining, framing, hop-by-hop fields, hand-off mid-connection.
		"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nshort",
		"GET http://a:1/x HTTP/1.1\r\nHost: b\r\nConnection: X-A\r\nX-A: 1\r\nTE: trailers\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("z", 70000) + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: 1\r\n", 200) + "\r\n",
	} {
		f.Add([]byte(seed))
	}
	be := h2cBackend(f, http.HandlerFunc(echoHandler))
	h := newHarness(f, be.Listener.Addr().String())
	client := h1Client(h.addr)

	f.Fuzz(func(t *testing.T, in []byte) {
		conn, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = conn.Write(in)
		_ = conn.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, conn) // answer or close; the deadline bounds it
		conn.Close()

		resp, err := client.Get("http://healthy.example/")
		if err != nil {
			t.Fatalf("proxy stopped serving after input %q: %v", in, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("proxy answered %d after input %q", resp.StatusCode, in)
		}
	})
}
