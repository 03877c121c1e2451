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
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/linkerd-go/linkerd/proxy/detect"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/internal/proxytest"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// harness runs the outbound HTTP proxy on a loopback listener; every
// connection is forwarded to target, as if iptables had redirected it there.
type harness struct {
	addr   string
	reg    *metrics.Registry
	target netip.AddrPort
}

func newHarness(t testing.TB, target string, opts ...func(*testOptions)) *harness {
	t.Helper()
	reg := metrics.NewRegistry()
	dialer := &transport.Dialer{Direction: transport.Outbound, Metrics: reg, Timeout: time.Second}
	o := testOptions{Direction: transport.Outbound, Resolver: discovery.OriginalDst{NoTLSReason: "not_provided_by_service_discovery"},
		Dialer: dialer, Metrics: reg}
	for _, f := range opts {
		f(&o)
	}
	srv := newTestServer(o)
	// Registered before Serve, so it runs once every connection is done.
	t.Cleanup(func() {
		srv.Close()
		srv.CloseIdleConnections()
	})
	h := &harness{reg: reg, target: netip.MustParseAddrPort(target)}
	h.addr = proxytest.Serve(t, func(ctx context.Context, c net.Conn) {
		serveDetected(ctx, srv, c, &pipeline.Conn{OrigDst: h.target, TLS: transport.NoIdentity("loopback")})
	})
	return h
}

// serveDetected hands a connection to srv as inbound and outbound do: HTTP/1
// to the fast path, HTTP/2 to the proxy's own server.
func serveDetected(ctx context.Context, srv *Server, c net.Conn, info *pipeline.Conn) {
	res, dc, err := detect.Detect(ctx, c, time.Second)
	if err != nil {
		c.Close()
		return
	}
	if res.Protocol == detect.HTTP1 {
		srv.ServeHTTP1(ctx, dc, info)
		return
	}
	srv.ServeH2(ctx, dc, info)
}

func (h *harness) metrics(authority string) *metrics.HTTP {
	l := metrics.Labels{{Name: "direction", Value: "outbound"}, {Name: "authority", Value: authority}}
	l = append(l, transport.TargetLabels(h.target)...)
	l = append(l, transport.NoIdentity("not_provided_by_service_discovery").ConnectLabels()...)
	return h.reg.HTTP(l)
}

func h2cBackend(t testing.TB, handler http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(handler)
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetHTTP1(true)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func h1Client(proxy string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", proxy)
		},
	}}
}

func h2cClient(proxy string) *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Protocols: p,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", proxy)
		},
	}}
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).EnableFullDuplex()
	for k := range r.Trailer {
		w.Header().Add("Trailer", k)
	}
	w.Header().Set("X-Proto", r.Proto)
	w.Header().Set("X-Host", r.Host)
	w.Header().Set("X-Connection-Header", r.Header.Get("X-Hop"))
	_, _ = io.Copy(w, r.Body)
	for k, v := range r.Trailer {
		w.Header()[k] = v
	}
}

func TestHTTP1KeepAliveChunkedTrailers(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(echoHandler))
	h := newHarness(t, be.Listener.Addr().String())
	c := h1Client(h.addr)
	body := make([]byte, 3<<20)
	_, _ = rand.Read(body)
	for i := range 3 {
		req, _ := http.NewRequest("POST", "http://svc.example:8080/echo", io.MultiReader(bytes.NewReader(body))) // unknown length: chunked
		req.Trailer = http.Header{"X-Sum": nil}
		req.Header.Set("Connection", "X-Hop")
		req.Header.Set("X-Hop", "must-not-pass")
		req.Body = &trailerSetter{r: bytes.NewReader(body), req: req, v: fmt.Sprint(i)}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("request %d: body mismatch (%d bytes back)", i, len(got))
		}
		if resp.Header.Get("X-Proto") != "HTTP/1.1" || resp.Header.Get("X-Host") != "svc.example:8080" {
			t.Fatalf("backend saw proto %q host %q", resp.Header.Get("X-Proto"), resp.Header.Get("X-Host"))
		}
		if v := resp.Header.Get("X-Connection-Header"); v != "" {
			t.Fatalf("header named in Connection reached the backend: %q", v)
		}
		if v := resp.Trailer.Get("X-Sum"); v != fmt.Sprint(i) {
			t.Fatalf("trailer X-Sum = %q, want %d", v, i)
		}
	}
	m := h.metrics("svc.example:8080")
	if n := m.Requests(); n != 3 {
		t.Fatalf("request_total = %d, want 3", n)
	}
	if n := eventually(func() uint64 { return m.ResponseCount(metrics.ResponseKey{Status: 200, GRPCStatus: -1}) }, 3); n != 3 {
		t.Fatalf("response_total{200,success} = %d, want 3", n)
	}
}

// trailerSetter sets the request trailer once the body is read, as a client streaming a checksum would.
type trailerSetter struct {
	r   io.Reader
	req *http.Request
	v   string
}

func (b *trailerSetter) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.req.Trailer.Set("X-Sum", b.v)
	}
	return n, err
}
func (b *trailerSetter) Close() error { return nil }

func TestExpectContinue(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Reject") != "" {
			w.WriteHeader(http.StatusExpectationFailed)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d", len(b))
	}))
	h := newHarness(t, be.Listener.Addr().String())
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "POST /up HTTP/1.1\r\nHost: up.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue before sending the body, got %q, %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // blank line after the interim response
		t.Fatal(err)
	}
	fmt.Fprint(conn, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "got 5" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
}

func TestH2CAndGRPCClassification(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Add("Trailer", "Grpc-Status")
		_, _ = w.Write([]byte{0, 0, 0, 0, 0})
		w.Header().Set("Grpc-Status", r.URL.Query().Get("status"))
	}))
	h := newHarness(t, be.Listener.Addr().String())
	c := h2cClient(h.addr)
	for _, status := range []string{"0", "2", "2"} {
		req, _ := http.NewRequest("POST", "http://grpc.example:9000/pkg.Svc/Method?status="+status, bytes.NewReader([]byte{0, 0, 0, 0, 0}))
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.Header.Get("X-Proto") != "HTTP/2.0" {
			t.Fatalf("not HTTP/2 end to end: client %s, backend %s", resp.Proto, resp.Header.Get("X-Proto"))
		}
		if got := resp.Trailer.Get("Grpc-Status"); got != status {
			t.Fatalf("grpc-status trailer = %q, want %q", got, status)
		}
	}
	m := h.metrics("grpc.example:9000")
	if n := eventually(func() uint64 { return m.ResponseCount(metrics.ResponseKey{Status: 200, GRPCStatus: 0}) }, 1); n != 1 {
		t.Errorf("success responses = %d, want 1", n)
	}
	if n := eventually(func() uint64 { return m.ResponseCount(metrics.ResponseKey{Status: 200, GRPCStatus: 2, Failure: true}) }, 2); n != 2 {
		t.Errorf("grpc_status=2 failures = %d, want 2", n)
	}
}

func TestProxyErrors(t *testing.T) {
	// A port nothing listens on.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	h := newHarness(t, dead)

	resp, err := h1Client(h.addr).Get("http://dead.example/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.Header.Get(pipeline.HeaderProxyError), "connection refused") {
		t.Fatalf("got %d, l5d-proxy-error %q", resp.StatusCode, resp.Header.Get(pipeline.HeaderProxyError))
	}

	req, _ := http.NewRequest("POST", "http://dead.example/pkg.Svc/M", bytes.NewReader(nil))
	req.Header.Set("Content-Type", "application/grpc")
	resp, err = h2cClient(h.addr).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "14" || resp.Header.Get(pipeline.HeaderProxyError) == "" {
		t.Fatalf("gRPC error: status %d grpc-status %q l5d-proxy-error %q", resp.StatusCode, resp.Header.Get("Grpc-Status"), resp.Header.Get(pipeline.HeaderProxyError))
	}
	m := h.metrics("dead.example")
	if n := eventually(func() uint64 {
		return m.ResponseCount(metrics.ResponseKey{Status: 502, GRPCStatus: -1, Failure: true, Error: "connection_refused"})
	}, 1); n != 1 {
		t.Errorf("502 connection_refused responses = %d, want 1", n)
	}

	// Malformed requests are answered, and the proxy keeps serving.
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: a\r\nBad Header Line\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Fatalf("malformed request answered %q, want 400", line)
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	be := h2cBackend(t, websocket.Handler(func(ws *websocket.Conn) { _, _ = io.Copy(ws, ws) }))
	h := newHarness(t, be.Listener.Addr().String())
	cfg, _ := websocket.NewConfig("ws://ws.example/ws", "http://ws.example/")
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, msg := range []string{"hello", strings.Repeat("x", 100000)} {
		if _, err := ws.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		_ = ws.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(ws, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Fatalf("echo mismatch: %d bytes back, want %d", len(got), len(msg))
		}
	}
	if n := eventually(func() uint64 {
		return h.metrics("ws.example").ResponseCount(metrics.ResponseKey{Status: 101, GRPCStatus: -1})
	}, 1); n != 1 {
		t.Fatalf("101 responses = %d, want 1", n)
	}
}

func TestConnectTunnel(t *testing.T) {
	// An upstream forward proxy that accepts CONNECT and then echoes.
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					return
				}
				if req.Host == "refused.example:443" {
					fmt.Fprint(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
					return
				}
				fmt.Fprint(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				_, _ = io.Copy(c, br)
			}()
		}
	}()
	h := newHarness(t, up.Addr().String())

	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "CONNECT db.example:443 HTTP/1.1\r\nHost: db.example:443\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	fmt.Fprint(conn, "ping through the tunnel\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "ping through the tunnel\n" {
		t.Fatalf("tunnel echo %q, %v", line, err)
	}

	conn2, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	_ = conn2.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn2, "CONNECT refused.example:443 HTTP/1.1\r\nHost: refused.example:443\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(conn2), &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("refused CONNECT: %v %v, want 403", resp, err)
	}
}
