package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/internal/proxytest"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// stubHandler routes every request to one endpoint: the one layer of the
// test servers' chain.
type stubHandler struct {
	ep      *balance.Endpoint
	handoff func(c net.Conn) error
}

func (h *stubHandler) Serve(ctx context.Context, x *pipeline.Exchange) error {
	x.Endpoint = h.ep
	return x.Next(ctx)
}

func (h *stubHandler) HandOff(c net.Conn, _ *pipeline.Conn) error {
	if h.handoff == nil {
		c.Close()
		return errors.New("no hand-off")
	}
	return h.handoff(c)
}

// testServer runs an h1.Server on a loopback listener in front of backend.
type testServer struct {
	srv    *Server
	addr   string
	cancel context.CancelFunc
	h      *stubHandler
}

func newTestServer(t *testing.T, backend string) *testServer {
	t.Helper()
	pool := NewPool(0, 0)
	t.Cleanup(pool.Close) // after the listener's cleanup: every handler has returned
	h := &stubHandler{ep: &balance.Endpoint{Addr: netip.MustParseAddrPort(backend)}}
	srv := &Server{Pool: pool, Chain: pipeline.NewChain(h), HandOff: h.HandOff,
		Dial: func(ctx context.Context, ep *balance.Endpoint) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ep.Addr.String())
		}}
	// The server's context is the test's own, so that a test can cancel it.
	ctx, cancel := context.WithCancel(context.Background())
	addr := proxytest.Serve(t, func(_ context.Context, c net.Conn) {
		_ = srv.Serve(ctx, c, &pipeline.Conn{})
	})
	t.Cleanup(cancel)
	return &testServer{srv: srv, addr: addr, cancel: cancel, h: h}
}

func get(t *testing.T, c net.Conn, br *bufio.Reader, path string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}))
	defer be.Close()
	ts := newTestServer(t, be.Listener.Addr().String())

	idle, idleBR := proxytest.Dial(t, ts.addr)
	get(t, idle, idleBR, "/") // now idle between requests

	busy, busyBR := proxytest.Dial(t, ts.addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-arrived

	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(context.Background()) }()

	// The idle connection closes at once.
	if _, err := idleBR.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	// The in-flight request completes, told the connection closes.
	close(release)
	resp, err := http.ReadResponse(busyBR, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "done" || !resp.Close {
		t.Fatalf("in-flight response %q, close %v; want done, close", b, resp.Close)
	}
	if _, err := busyBR.ReadByte(); err != io.EOF {
		t.Fatalf("busy connection after its response: %v, want EOF", err)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return once drained")
	}
	// No more connections.
	c, _ := net.Pipe()
	if err := ts.srv.Serve(context.Background(), c, &pipeline.Conn{}); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownTimeoutThenClose(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	defer be.Close()
	defer close(release)
	ts := newTestServer(t, be.Listener.Addr().String())
	busy, busyBR := proxytest.Dial(t, ts.addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-arrived
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	ts.srv.Close()
	if _, err := busyBR.ReadByte(); err == nil {
		t.Fatal("Close left the busy connection open")
	}
}

func TestContextCancelClosesConnections(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	defer be.Close()
	defer close(release)
	ts := newTestServer(t, be.Listener.Addr().String())
	busy, busyBR := proxytest.Dial(t, ts.addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-arrived
	ts.cancel()
	if _, err := busyBR.ReadByte(); err == nil {
		t.Fatal("cancelled context left the connection open")
	}
}

func TestHandOffReplaysRequest(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") }))
	defer be.Close()
	ts := newTestServer(t, be.Listener.Addr().String())
	got := make(chan string, 1)
	ts.h.handoff = func(c net.Conn) error {
		defer c.Close()
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			got <- err.Error()
			return nil
		}
		b, _ := io.ReadAll(req.Body)
		got <- req.Method + " " + req.URL.Path + " " + req.Header.Get("Upgrade") + " " + string(b)
		io.WriteString(c, "HTTP/1.1 299 Handed\r\nContent-Length: 0\r\n\r\n")
		return nil
	}
	c, br := proxytest.Dial(t, ts.addr)
	if resp := get(t, c, br, "/first"); resp.StatusCode != 200 {
		t.Fatalf("fast path answered %d", resp.StatusCode)
	}
	// Sent in pieces: the hand-off must replay what was read and leave the rest.
	io.WriteString(c, "POST /ws HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: Upgrade\r\nContent-Length: 5\r\n\r\nhe")
	time.Sleep(10 * time.Millisecond)
	io.WriteString(c, "llo")
	if s := <-got; s != "POST /ws x hello" {
		t.Fatalf("handed-off server read %q", s)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 299 {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestUpstreamConnectFailure(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	ts := newTestServer(t, dead)
	c, br := proxytest.Dial(t, ts.addr)
	for range 2 { // answered, and the connection goes on
		resp := get(t, c, br, "/")
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.Header.Get(pipeline.HeaderProxyError), "refused") {
			t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get(pipeline.HeaderProxyError))
		}
	}
}

// TestSlowHeadTimesOut checks that a client that never finishes its request
// head is disconnected after the head timeout, also once a request was
// served on the connection.
func TestSlowHeadTimesOut(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(be.Close)
	ts := newTestServer(t, be.Listener.Addr().String())
	ts.srv.HeadTimeout = 100 * time.Millisecond
	for _, first := range []bool{false, true} {
		c, br := proxytest.Dial(t, ts.addr)
		if first {
			get(t, c, br, "/first")
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nX-Part: ")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("after a request %v: read = %v, want EOF: the connection should close", first, err)
		}
	}
}

// TestRejectsWithoutForwarding checks the answers the fast path makes itself
// (RejectStatus) and that it reports them through OnReject.
func TestRejectsWithoutForwarding(t *testing.T) {
	var forwarded atomic.Int32
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { forwarded.Add(1) }))
	t.Cleanup(be.Close)
	ts := newTestServer(t, be.Listener.Addr().String())
	rejected := make(chan int, 10)
	ts.srv.OnReject = func(status int, _ error) { rejected <- status }
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"smuggling", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"too many fields", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", MaxRequestFields) + "\r\n", 431},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", MaxHeadBytes) + "\r\n\r\n", 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := proxytest.Dial(t, ts.addr)
			go io.WriteString(c, tc.req)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || resp.Header.Get(pipeline.HeaderProxyError) == "" || !resp.Close {
				t.Fatalf("got %d %v, want %d with %s and Connection: close", resp.StatusCode, resp.Header, tc.status, pipeline.HeaderProxyError)
			}
			if got := <-rejected; got != tc.status {
				t.Errorf("OnReject got %d, want %d", got, tc.status)
			}
		})
	}
	if n := forwarded.Load(); n != 0 {
		t.Errorf("%d requests forwarded", n)
	}
}
