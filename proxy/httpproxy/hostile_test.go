package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/internal/proxytest"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// TestInboundH2RapidReset drives an HTTP/2 "rapid reset" (HEADERS then
// RST_STREAM, in a loop) at the inbound proxy's own HTTP/2 server: the
// connection ends with GOAWAY ENHANCE_YOUR_CALM after a bounded number of
// streams, and the cancelled requests are not counted as failures.
func TestInboundH2RapidReset(t *testing.T) {
	var hits atomic.Int32
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Millisecond):
		}
	}))
	backend := netip.MustParseAddrPort(be.Listener.Addr().String())
	addr, reg := inboundH2Server(t, backend)

	c, _ := proxytest.Dial(t, addr)
	fr := http2.NewFramer(c, c)
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "reset.example"}, {Name: ":path", Value: "/"}} {
		_ = enc.WriteField(f)
	}
	block := hbuf.Bytes()
	io.WriteString(c, http2.ClientPreface)
	_ = fr.WriteSettings()
	sent := 0
	for id := uint32(1); id < 20000; id += 2 {
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}) != nil ||
			fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break // the proxy closed the connection
		}
		sent++
	}
	var goAway *http2.GoAwayFrame
	for goAway == nil {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY after %d resets: %v", sent, err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			goAway = ga
		}
	}
	if goAway.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", goAway.ErrCode)
	}
	if n := hits.Load(); n > 1000 {
		t.Errorf("%d reset requests reached the application", n)
	}
	if n := reg.Counter("inbound_http_errors_total", metrics.Labels{{Name: "error", Value: "too_many_resets"}}).Value(); n != 1 {
		t.Errorf("inbound_http_errors_total{error=too_many_resets} = %d, want 1", n)
	}
	// Every request counted is answered, none as a failure.
	var requests, responses, failures float64
	_ = testkit.Poll(5*time.Second, func() error {
		if requests, responses, failures = httpTotals(t, reg); failures > 0 || requests == responses {
			return nil
		}
		return errors.New("requests not all answered")
	})
	if failures > 0 {
		t.Fatalf("%v of %v cancelled requests counted as failures", failures, responses)
	}
	t.Logf("%d streams sent, %d reached the application; request_total %v, response_total %v", sent, hits.Load(), requests, responses)
}

// httpTotals sums request_total, response_total and its failures.
func httpTotals(t *testing.T, reg *metrics.Registry) (requests, responses, failures float64) {
	t.Helper()
	families, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "request_total":
				requests += m.GetCounter().GetValue()
			case "response_total":
				responses += m.GetCounter().GetValue()
				for _, l := range m.GetLabel() {
					if l.GetName() == "classification" && l.GetValue() == "failure" {
						failures += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return requests, responses, failures
}

// TestFastPathChunkedTrailers checks chunked bodies with trailers both
// ways, pipelined on one connection: the request's trailers reach the
// application, the response's reach the client.
func TestFastPathChunkedTrailers(t *testing.T) {
	got := make(chan string, 10)
	be := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			got <- string(b) + "|" + req.Trailer.Get("X-Req-Sum")
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Resp-Sum\r\n\r\n"+
				"3\r\nabc\r\n0\r\nX-Resp-Sum: 3\r\n\r\n")
		}
	})
	h := newHarness(t, be.addr)
	c, br := dialProxy(t, h)
	req := "POST /t HTTP/1.1\r\nHost: trailers.example\r\nTransfer-Encoding: chunked\r\nTrailer: X-Req-Sum\r\n\r\n" +
		"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Req-Sum: 11\r\n\r\n"
	io.WriteString(c, req+req) // pipelined
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if string(b) != "abc" || resp.Trailer.Get("X-Resp-Sum") != "3" {
			t.Errorf("response %d: body %q, trailers %v", i, b, resp.Trailer)
		}
		select {
		case g := <-got:
			if g != "hello world|11" {
				t.Errorf("request %d reached the application as %q", i, g)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("request %d did not reach the application", i)
		}
	}
}

// slowBodyBackend answers every request 200 with a body that streams
// until the request is cancelled; started gets a value once the head is out.
func slowBodyBackend(t *testing.T) (string, <-chan struct{}) {
	started := make(chan struct{}, 10)
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		started <- struct{}{}
		chunk := bytes.Repeat([]byte("s"), 32<<10)
		for {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Millisecond):
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	return be.Listener.Addr().String(), started
}

// TestClientGoneMidResponse checks that a client leaving while the
// response streams is counted as its cancellation, not as a failure of
// the server: HTTP/1.1 on the fast path, and HTTP/2 reset by the client
// at the inbound proxy's own server.
func TestClientGoneMidResponse(t *testing.T) {
	cancelled := metrics.ResponseKey{Status: 200, GRPCStatus: -1, Error: "cancelled"}
	t.Run("HTTP/1.1", func(t *testing.T) {
		addr, started := slowBodyBackend(t)
		h := newHarness(t, addr)
		c, br := dialProxy(t, h)
		io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: gone-mid.example\r\n\r\n")
		if _, err := http.ReadResponse(br, nil); err != nil {
			t.Fatal(err)
		}
		<-started
		c.Close()
		if n := eventually(func() uint64 { return h.metrics("gone-mid.example").ResponseCount(cancelled) }, 1); n != 1 {
			_, responses, failures := httpTotals(t, h.reg)
			t.Fatalf("response_total{200, success, cancelled} = %d (%v responses, %v failures)", n, responses, failures)
		}
	})
	t.Run("HTTP/2 reset", func(t *testing.T) {
		addr, started := slowBodyBackend(t)
		backend := netip.MustParseAddrPort(addr)
		paddr, reg := inboundH2Server(t, backend)
		c, _ := proxytest.Dial(t, paddr)
		fr := http2.NewFramer(c, c)
		var hbuf bytes.Buffer
		enc := hpack.NewEncoder(&hbuf)
		for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
			{Name: ":authority", Value: "gone-mid.example"}, {Name: ":path", Value: "/stream"}} {
			_ = enc.WriteField(f)
		}
		io.WriteString(c, http2.ClientPreface)
		_ = fr.WriteSettings()
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hbuf.Bytes(), EndHeaders: true, EndStream: true})
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := f.(*http2.DataFrame); ok {
				break // the body streams
			}
		}
		<-started
		_ = fr.WriteRSTStream(1, http2.ErrCodeCancel)
		testkit.Eventually(t, 5*time.Second, func() error {
			_, responses, failures := httpTotals(t, reg)
			if failures > 0 {
				t.Fatalf("the client's reset was counted as a failure")
			}
			if responses != 1 {
				return fmt.Errorf("response_total = %v, want 1", responses)
			}
			return nil
		})
	})
}

// pairIdleTimeout, when set, is the pooled connections' idle timeout of
// the proxies newMeshPair starts.
var pairIdleTimeout time.Duration

// TestMeshPairSteadyTrafficOneConnection checks the pair keeps one
// connection between the proxies while requests flow, however many idle
// timeouts long: a busy connection is never closed as idle, and no
// connection is dialed beside it. HTTP/1.1 requests go over the pool of
// HTTP/2 connections (orig-proto), gRPC stays HTTP/2.
func TestMeshPairSteadyTrafficOneConnection(t *testing.T) {
	pairIdleTimeout = 100 * time.Millisecond
	defer func() { pairIdleTimeout = 0 }()
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("Content-Type") == "application/grpc" {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status")
			_, _ = w.Write([]byte{0, 0, 0, 0, 1, 42})
			w.Header().Set("Grpc-Status", "0")
			return
		}
		io.WriteString(w, "ok")
	}))
	for _, tc := range []struct {
		name    string
		request func(t *testing.T, m *meshPair) func() error
	}{
		{"HTTP/1.1", func(t *testing.T, m *meshPair) func() error {
			c, br := proxytest.Dial(t, m.addr)
			return func() error {
				resp, body := rawExchange(t, c, br, "GET /steady HTTP/1.1\r\nHost: steady.example\r\n\r\n", false)
				if resp.StatusCode != http.StatusOK || string(body) != "ok" {
					return fmt.Errorf("%d %q", resp.StatusCode, body)
				}
				return nil
			}
		}},
		{"gRPC", func(t *testing.T, m *meshPair) func() error {
			c := h2cClient(m.addr)
			return func() error {
				req, _ := http.NewRequest(http.MethodPost, "http://steady.example/svc/Method", bytes.NewReader([]byte{0, 0, 0, 0, 1, 42}))
				req.Header.Set("Content-Type", "application/grpc")
				resp, err := c.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				_, _ = io.ReadAll(resp.Body)
				if got := resp.Trailer.Get("Grpc-Status"); resp.StatusCode != http.StatusOK || got != "0" {
					return fmt.Errorf("%d, grpc-status %q", resp.StatusCode, got)
				}
				return nil
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMeshPair(t, be.Listener.Addr().String(), true)
			request := tc.request(t, m)
			// A loaded machine may stall this loop for longer than the idle
			// timeout; each such gap may rightly cost a new connection.
			n, stalls := 0, 0
			last := time.Now()
			for end := time.Now().Add(10 * pairIdleTimeout); time.Now().Before(end); n++ {
				if gap := time.Since(last); gap >= pairIdleTimeout/2 {
					stalls++
				}
				if err := request(); err != nil {
					t.Fatalf("request %d: %v", n, err)
				}
				last = time.Now()
				time.Sleep(pairIdleTimeout / 10)
			}
			if got := m.inConns.Load(); got < 1 || got > int64(1+stalls) {
				t.Fatalf("%d connections between the proxies for %d requests over 10 idle timeouts (%d stalls of the test loop), want 1", got, n, stalls)
			}
		})
	}
}

// inboundH2Server is an inbound proxy server in front of backend, serving
// connections as inbound serves a meshed peer's; it returns its address and
// metrics.
func inboundH2Server(t *testing.T, backend netip.AddrPort) (string, *metrics.Registry) {
	t.Helper()
	reg := metrics.NewRegistry()
	srv := newTestServer(testOptions{Direction: transport.Inbound, Resolver: discovery.OriginalDst{NoTLSReason: "loopback"},
		Dialer: &transport.Dialer{Direction: transport.Inbound, Metrics: reg, Timeout: time.Second}, Metrics: reg})
	t.Cleanup(func() {
		srv.Close()
		srv.CloseIdleConnections()
	})
	addr := proxytest.Serve(t, func(ctx context.Context, c net.Conn) {
		serveMeshed(ctx, srv, c, &pipeline.Conn{OrigDst: backend, TLS: transport.NoIdentity("loopback")})
	})
	return addr, reg
}
