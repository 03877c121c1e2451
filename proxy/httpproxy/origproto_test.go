package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/linkerd-go/linkerd/pkg/pki"
	"github.com/linkerd-go/linkerd/proxy/detect"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/internal/proxytest"
	"github.com/linkerd-go/linkerd/proxy/meshtls"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

const (
	clientIdentity = "client.test.serviceaccount.identity.linkerd.cluster.local"
	serverIdentity = "server.test.serviceaccount.identity.linkerd.cluster.local"
)

// testIdentity is a meshtls.Source with a leaf issued by a test anchor.
type testIdentity struct {
	name  string
	cert  *tls.Certificate
	roots *x509.CertPool
}

func (s *testIdentity) Name() string                  { return s.name }
func (s *testIdentity) Certificate() *tls.Certificate { return s.cert }
func (s *testIdentity) Roots() *x509.CertPool         { return s.roots }

func newTestIdentity(t testing.TB, anchor *pki.CA, name string) *testIdentity {
	t.Helper()
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := pki.MakeCSR(key, name)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := anchor.SignCSR(csr, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(anchor.Cert)
	return &testIdentity{name: name, roots: roots,
		cert: &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}}
}

// meshPair is an outbound proxy and an inbound proxy with mTLS between
// them, in front of a backend, as in two meshed pods: the outbound proxy
// resolves every request to the inbound one (a static endpoint with the
// server's identity), which forwards to the backend.
type meshPair struct {
	addr            string // the outbound proxy's listener
	outReg, inReg   *metrics.Registry
	inAddr, backend netip.AddrPort
	// inConns counts the TCP connections the inbound proxy accepted.
	inConns atomic.Int64
}

func newMeshPair(t testing.TB, backend string, upgrade bool, outOpts ...func(*testOptions)) *meshPair {
	t.Helper()
	anchor, err := pki.NewCA("root.linkerd.cluster.local", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clientTLS := meshtls.New(newTestIdentity(t, anchor, clientIdentity))
	serverTLS := meshtls.New(newTestIdentity(t, anchor, serverIdentity))
	m := &meshPair{outReg: metrics.NewRegistry(), inReg: metrics.NewRegistry(), backend: netip.MustParseAddrPort(backend)}

	// Inbound: terminate mTLS, detect, forward to the backend.
	inO := testOptions{Direction: transport.Inbound, Resolver: discovery.OriginalDst{NoTLSReason: "loopback"},
		Dialer: &transport.Dialer{Direction: transport.Inbound, Metrics: m.inReg, Timeout: time.Second}, Metrics: m.inReg,
		IdleConnTimeout: pairIdleTimeout}
	var hooks testOptions
	for _, f := range outOpts {
		f(&hooks)
	}
	if hooks.Inbound != nil {
		hooks.Inbound(&inO)
	}
	inSrv := newTestServer(inO)
	// Registered before the listener, so it runs once every connection is done.
	t.Cleanup(func() {
		inSrv.Close()
		inSrv.CloseIdleConnections()
	})
	inAddr := proxytest.Serve(t, func(ctx context.Context, c net.Conn) {
		m.inConns.Add(1)
		tc := tls.Server(c, serverTLS.Server())
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return
		}
		status := transport.TLS{Mode: "true", ID: meshtls.PeerIdentity(tc.ConnectionState())}
		mc := transport.NewMeteredConn(tc, m.inReg.TCP(transport.ConnLabels(transport.Inbound, transport.PeerSrc, m.backend, status.AcceptLabels(), nil)))
		serveMeshed(ctx, inSrv, mc, &pipeline.Conn{OrigDst: m.backend, TLS: status})
	})
	m.inAddr = netip.MustParseAddrPort(inAddr)

	// Outbound: the application's connections, redirected to the inbound proxy's address.
	static, err := discovery.ParseStatic(m.inAddr.String()+"="+serverIdentity, discovery.OriginalDst{})
	if err != nil {
		t.Fatal(err)
	}
	outO := testOptions{Direction: transport.Outbound, Resolver: static,
		Dialer:  &transport.Dialer{Direction: transport.Outbound, Metrics: m.outReg, Timeout: time.Second, TLS: clientTLS},
		Metrics: m.outReg, H2Upgrade: upgrade, IdleConnTimeout: pairIdleTimeout}
	for _, f := range outOpts {
		f(&outO)
	}
	outSrv := newTestServer(outO)
	t.Cleanup(func() {
		outSrv.Close()
		outSrv.CloseIdleConnections()
		outSrv.h2pool.Close()
	})
	m.addr = proxytest.Serve(t, func(ctx context.Context, c net.Conn) {
		serveDetected(ctx, outSrv, c, &pipeline.Conn{OrigDst: m.inAddr, TLS: transport.NoIdentity("loopback")})
	})
	return m
}

// serveMeshed hands a meshed peer's connection to srv as inbound does:
// HTTP/1 to the fast path, HTTP/2 to the proxy's own server.
func serveMeshed(ctx context.Context, srv *Server, c net.Conn, info *pipeline.Conn) {
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

// outMetrics and inMetrics are the request metrics of authority on each side.
func (m *meshPair) outMetrics(authority string) *metrics.HTTP {
	l := metrics.Labels{{Name: "direction", Value: "outbound"}, {Name: "authority", Value: authority}}
	l = append(l, transport.TargetLabels(m.inAddr)...)
	l = append(l, transport.TLS{Mode: "true", ID: serverIdentity}.ConnectLabels()...)
	return m.outReg.HTTP(l)
}

func (m *meshPair) inMetrics(authority string) *metrics.HTTP {
	l := metrics.Labels{{Name: "direction", Value: "inbound"}, {Name: "authority", Value: authority}}
	l = append(l, transport.TargetLabels(m.backend)...)
	l = append(l, transport.TLS{Mode: "true", ID: clientIdentity}.AcceptLabels()...)
	return m.inReg.HTTP(l)
}

// h1Backend is an HTTP/1.1-only server that records the protocol and
// connection-specific headers of the requests it gets.
func h1Backend(t testing.TB, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend-Proto", r.Proto)
		w.Header().Set("X-Backend-Orig-Proto", r.Header.Get(pipeline.HeaderOrigProto))
		w.Header().Set("X-Backend-Host", r.Host)
		w.Header().Set("X-Backend-Client-Id", r.Header.Get(pipeline.HeaderClientID))
		handler(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// rawExchange sends a raw HTTP/1.1 request on conn and reads the response
// with its body (nil for HEAD).
func rawExchange(t *testing.T, conn net.Conn, br *bufio.Reader, request string, head bool) (*http.Response, []byte) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	method := "GET"
	if head {
		method = "HEAD"
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response to %q: %v", strings.SplitN(request, "\r\n", 2)[0], err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp, body
}

// TestOrigProtoResponses checks that responses of every shape come back
// intact, correctly framed for HTTP/1.1, on one keep-alive client
// connection, through one HTTP/2 connection between the proxies.
func TestOrigProtoResponses(t *testing.T) {
	large := make([]byte, 3<<20)
	_, _ = rand.Read(large)
	be := h1Backend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "fixed")
		case "/chunked":
			w.Header().Set("X-Custom", "a")
			w.Header().Add("X-Custom", "b")
			_, _ = io.WriteString(w, "part one,")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part two")
		case "/large":
			w.Header().Set("Content-Length", fmt.Sprint(len(large)))
			_, _ = w.Write(large)
		case "/trailers":
			w.Header().Set("Trailer", "X-Checksum")
			_, _ = io.WriteString(w, "with trailers")
			w.Header().Set("X-Checksum", "abc")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/notmodified":
			w.Header().Set("Etag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "/error":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "boom")
		case "/echo":
			w.Header().Set("X-Got-Length", fmt.Sprint(r.ContentLength))
			w.Header().Set("X-Got-TE", strings.Join(r.TransferEncoding, ","))
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Trailer", "X-Got-Trailer")
			_, _ = w.Write(b)
			w.Header().Set("X-Got-Trailer", r.Trailer.Get("X-Sum"))
		case "/head":
			w.Header().Set("Content-Length", "1234")
		}
	})
	m := newMeshPair(t, be.Listener.Addr().String(), true)
	conn, err := net.Dial("tcp", m.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	const host = "web.test.svc.cluster.local:8080"
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n" }

	for _, tc := range []struct {
		name    string
		request string
		head    bool
		status  int
		body    string
		bodyLen int
		length  int64 // the client's Content-Length, -1 for chunked
		check   func(t *testing.T, resp *http.Response)
	}{
		{name: "content-length kept", request: get("/length"), status: 200, body: "fixed", length: 5},
		{name: "unknown length goes chunked", request: get("/chunked"), status: 200, body: "part one,part two", length: -1,
			check: func(t *testing.T, resp *http.Response) {
				if got := resp.Header.Values("X-Custom"); strings.Join(got, ",") != "a,b" {
					t.Errorf("repeated header X-Custom = %q", got)
				}
			}},
		{name: "large body", request: get("/large"), status: 200, bodyLen: len(large), length: int64(len(large))},
		{name: "response trailers", request: get("/trailers"), status: 200, body: "with trailers", length: -1,
			check: func(t *testing.T, resp *http.Response) {
				if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
					t.Errorf("trailer X-Checksum = %q", got)
				}
			}},
		{name: "HEAD keeps Content-Length", request: "HEAD /head HTTP/1.1\r\nHost: " + host + "\r\n\r\n", head: true, status: 200, length: 1234},
		{name: "204", request: get("/nocontent"), status: 204, length: 0},
		{name: "304", request: get("/notmodified"), status: 304, length: 0,
			check: func(t *testing.T, resp *http.Response) {
				if resp.Header.Get("Etag") != `"v1"` {
					t.Errorf("Etag = %q", resp.Header.Get("Etag"))
				}
			}},
		{name: "500 with body", request: get("/error"), status: 500, body: "boom", length: 4},
		{name: "request body with length", request: "POST /echo HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 11\r\n\r\nhello world",
			status: 200, body: "hello world", length: -1,
			check: func(t *testing.T, resp *http.Response) {
				if got := resp.Header.Get("X-Got-Length"); got != "11" {
					t.Errorf("backend saw Content-Length %s", got)
				}
			}},
		{name: "chunked request body with trailers", request: "POST /echo HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
			"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
			status: 200, body: "hello world", length: -1,
			check: func(t *testing.T, resp *http.Response) {
				if got := resp.Header.Get("X-Got-TE"); got != "chunked" {
					t.Errorf("backend saw Transfer-Encoding %q, want chunked", got)
				}
				if got := resp.Trailer.Get("X-Got-Trailer"); got != "42" {
					t.Errorf("backend saw request trailer X-Sum %q, want 42", got)
				}
			}},
		{name: "client's own l5d-orig-proto and l5d-client-id are dropped",
			request: "GET /length HTTP/1.1\r\nHost: " + host + "\r\nl5d-orig-proto: HTTP/9\r\nl5d-client-id: forged\r\n\r\n", status: 200, body: "fixed", length: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawExchange(t, conn, br, tc.request, tc.head)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (l5d-proxy-error %q)", resp.StatusCode, tc.status, resp.Header.Get(pipeline.HeaderProxyError))
			}
			if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
				t.Errorf("response proto %s", resp.Proto)
			}
			if tc.bodyLen > 0 {
				if !bytes.Equal(body, large) {
					t.Errorf("large body: %d bytes, mismatch", len(body))
				}
			} else if string(body) != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			if resp.ContentLength != tc.length {
				t.Errorf("Content-Length %d (Transfer-Encoding %q), want %d", resp.ContentLength, resp.TransferEncoding, tc.length)
			}
			if resp.StatusCode != 204 && resp.StatusCode != 304 {
				if got := resp.Header.Get("X-Backend-Proto"); got != "HTTP/1.1" {
					t.Errorf("backend saw %q, want HTTP/1.1", got)
				}
				if got := resp.Header.Get("X-Backend-Orig-Proto"); got != "" {
					t.Errorf("backend saw l5d-orig-proto %q", got)
				}
				if got := resp.Header.Get("X-Backend-Host"); got != host {
					t.Errorf("backend saw Host %q, want %q", got, host)
				}
				if got := resp.Header.Get("X-Backend-Client-Id"); got != clientIdentity {
					t.Errorf("backend saw l5d-client-id %q, want %q", got, clientIdentity)
				}
			}
			if got := resp.Header.Get(pipeline.HeaderOrigProto); got != "" {
				t.Errorf("client got l5d-orig-proto %q", got)
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
		})
	}
	if n := m.inConns.Load(); n != 1 {
		t.Errorf("inbound proxy accepted %d connections, want 1", n)
	}
	out, in := m.outMetrics(host), m.inMetrics(host)
	if n := eventually(out.Requests, 11); n != 11 {
		t.Errorf("outbound request_total = %d, want 11", n)
	}
	if n := eventually(in.Requests, 11); n != 11 {
		t.Errorf("inbound request_total = %d, want 11", n)
	}
	for _, side := range []*metrics.HTTP{out, in} {
		if n := eventually(func() uint64 {
			return side.ResponseCount(metrics.ResponseKey{Status: 500, GRPCStatus: -1, Failure: true})
		}, 1); n != 1 {
			t.Errorf("response_total{500} = %d, want 1", n)
		}
		if n := eventually(func() uint64 { return side.ResponseCount(metrics.ResponseKey{Status: 200, GRPCStatus: -1}) }, 8); n != 8 {
			t.Errorf("response_total{200} = %d, want 8", n)
		}
	}
}

// TestOrigProtoMultiplexes sends requests from many client connections at
// once: they share one connection between the proxies.
func TestOrigProtoMultiplexes(t *testing.T) {
	be := h1Backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "%s %s", r.URL.Path, b)
	})
	m := newMeshPair(t, be.Listener.Addr().String(), true)
	const clients, requests = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := h1Client(m.addr)
			defer c.CloseIdleConnections()
			for j := range requests {
				body := strings.Repeat("x", (i*requests+j)%300)
				resp, err := c.Post(fmt.Sprintf("http://svc.example/%d/%d", i, j), "text/plain", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := fmt.Sprintf("/%d/%d %s", i, j, body); err != nil || string(got) != want || resp.StatusCode != 200 {
					errs <- fmt.Errorf("client %d request %d: %d %q (%v), want %q", i, j, resp.StatusCode, got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := m.inConns.Load(); n != 1 {
		t.Errorf("inbound proxy accepted %d connections, want 1", n)
	}
	if n := eventually(m.inMetrics("svc.example").Requests, clients*requests); n != clients*requests {
		t.Errorf("inbound request_total = %d, want %d", n, clients*requests)
	}
}

// TestOrigProtoSwitch checks that without the upgrade (or for upgrade
// requests) HTTP/1.1 goes as HTTP/1.1 between the proxies.
func TestOrigProtoSwitch(t *testing.T) {
	be := h1Backend(t, func(w http.ResponseWriter, r *http.Request) {})
	m := newMeshPair(t, be.Listener.Addr().String(), false)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := h1Client(m.addr)
			defer c.CloseIdleConnections()
			for range 5 {
				resp, err := c.Get("http://svc.example/")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if n := m.inConns.Load(); n < 1 {
		t.Errorf("inbound proxy accepted %d connections", n)
	}
	if n := eventually(m.inMetrics("svc.example").Requests, 20); n != 20 {
		t.Errorf("inbound request_total = %d, want 20", n)
	}
}

// TestOrigProtoWebSocketStaysHTTP1 checks that an Upgrade request is not
// carried over HTTP/2: the WebSocket works end to end.
func TestOrigProtoWebSocketStaysHTTP1(t *testing.T) {
	be := httptest.NewServer(websocket.Handler(func(ws *websocket.Conn) { _, _ = io.Copy(ws, ws) }))
	defer be.Close()
	m := newMeshPair(t, be.Listener.Addr().String(), true)
	cfg, _ := websocket.NewConfig("ws://ws.example/ws", "http://ws.example/")
	conn, err := net.Dial("tcp", m.addr)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := ws.Write([]byte("ping over ws")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("ping over ws"))
	if _, err := io.ReadFull(ws, got); err != nil || string(got) != "ping over ws" {
		t.Fatalf("echo %q, %v", got, err)
	}
	if n := eventually(func() uint64 {
		return m.inMetrics("ws.example").ResponseCount(metrics.ResponseKey{Status: 101, GRPCStatus: -1})
	}, 1); n != 1 {
		t.Errorf("inbound response_total{101} = %d, want 1", n)
	}
}

// TestOrigProtoBackendDown checks the inbound proxy's error answer reaches
// the client through the upgraded hop.
func TestOrigProtoBackendDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	m := newMeshPair(t, dead, true)
	resp, err := h1Client(m.addr).Get("http://dead.example/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.Header.Get(pipeline.HeaderProxyError), "connection refused") {
		t.Fatalf("got %d, l5d-proxy-error %q", resp.StatusCode, resp.Header.Get(pipeline.HeaderProxyError))
	}
	if n := eventually(func() uint64 {
		return m.inMetrics("dead.example").ResponseCount(metrics.ResponseKey{Status: 502, GRPCStatus: -1, Failure: true, Error: "connection_refused"})
	}, 1); n != 1 {
		t.Errorf("inbound 502 connection_refused = %d, want 1", n)
	}
	if n := eventually(func() uint64 {
		return m.outMetrics("dead.example").ResponseCount(metrics.ResponseKey{Status: 502, GRPCStatus: -1, Failure: true})
	}, 1); n != 1 {
		t.Errorf("outbound response_total{502} = %d, want 1", n)
	}
}

// TestOrigProtoFullDuplex streams a request body while its echo streams
// back, chunked and with a length, over the upgraded hop.
func TestOrigProtoFullDuplex(t *testing.T) {
	be := h1Backend(t, func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		_, _ = io.Copy(w, r.Body)
	})
	m := newMeshPair(t, be.Listener.Addr().String(), true)
	body := make([]byte, 3<<20)
	_, _ = rand.Read(body)
	for _, chunked := range []bool{true, false} {
		c, err := net.Dial("tcp", m.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		errc := make(chan error, 1)
		go func() {
			if chunked {
				_, _ = io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: duplex.example\r\nTransfer-Encoding: chunked\r\n\r\n")
				for b := body; len(b) > 0; {
					n := min(len(b), 50000)
					fmt.Fprintf(c, "%x\r\n", n)
					_, _ = c.Write(b[:n])
					_, _ = io.WriteString(c, "\r\n")
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
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("chunked=%v: %d of %d bytes back, %v", chunked, len(got), len(body), err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		resp, body2 := rawExchange(t, c, br, "POST /echo HTTP/1.1\r\nHost: duplex.example\r\nContent-Length: 3\r\n\r\nabc", false)
		if resp.StatusCode != 200 || string(body2) != "abc" {
			t.Fatalf("next request on the connection: %d %q", resp.StatusCode, body2)
		}
	}
	if n := m.inConns.Load(); n != 1 {
		t.Errorf("inbound proxy accepted %d connections, want 1", n)
	}
}

// TestOrigProtoClientGone checks that a client leaving mid-request aborts
// the request at the backend, through the stream reset.
func TestOrigProtoClientGone(t *testing.T) {
	be, gotErr := bodyReadingBackend(t)
	m := newMeshPair(t, be.addr, true)
	c, err := net.Dial("tcp", m.addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "POST /up HTTP/1.1\r\nHost: gone.example\r\nContent-Length: 1000000\r\n\r\npartial")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	expectBodyAborted(t, gotErr)
	if n := eventually(func() uint64 {
		return m.outMetrics("gone.example").ResponseCount(metrics.ResponseKey{Status: 502, GRPCStatus: -1, Error: "cancelled"}) // a client cancel: not a failure
	}, 1); n != 1 {
		t.Errorf("outbound response_total{502, cancelled} = %d, want 1", n)
	}
}

// TestMeshedH2AndGRPC checks requests that are HTTP/2 from the client:
// they stay HTTP/2 end to end, through the inbound's own HTTP/2 server,
// with gRPC trailers and classification.
func TestMeshedH2AndGRPC(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-Client-Id", r.Header.Get(pipeline.HeaderClientID))
		w.Header().Add("Trailer", "Grpc-Status")
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
		w.Header().Set("Grpc-Status", r.URL.Query().Get("status"))
	}))
	m := newMeshPair(t, be.Listener.Addr().String(), true)
	c := h2cClient(m.addr)
	for _, status := range []string{"0", "7"} {
		req, _ := http.NewRequest("POST", "http://grpc.example:9000/pkg.Svc/M?status="+status, bytes.NewReader([]byte{0, 0, 0, 0, 1, 42}))
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.Header.Get("X-Proto") != "HTTP/2.0" || !bytes.Equal(got, []byte{0, 0, 0, 0, 1, 42}) {
			t.Fatalf("client %s, backend %s, body %v", resp.Proto, resp.Header.Get("X-Proto"), got)
		}
		if got := resp.Trailer.Get("Grpc-Status"); got != status {
			t.Fatalf("grpc-status %q, want %q", got, status)
		}
		if got := resp.Header.Get("X-Client-Id"); got != clientIdentity {
			t.Fatalf("backend saw l5d-client-id %q", got)
		}
	}
	in := m.inMetrics("grpc.example:9000")
	if n := eventually(func() uint64 { return in.ResponseCount(metrics.ResponseKey{Status: 200, GRPCStatus: 7, Failure: true}) }, 1); n != 1 {
		t.Errorf("inbound grpc_status=7 responses = %d, want 1", n)
	}
	if n := eventually(func() uint64 { return in.ResponseCount(metrics.ResponseKey{Status: 200, GRPCStatus: 0}) }, 1); n != 1 {
		t.Errorf("inbound grpc_status=0 responses = %d, want 1", n)
	}
}
