package integration

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// httpExchange is one request of the multiplexing test and what must come back.
type httpExchange struct {
	method, path string
	body         []byte
	status       int
	wantBody     []byte // nil: not checked
	wantLength   int64  // the client's Content-Length; -2: not checked
}

// checkExchange sends x with c and checks the response.
func checkExchange(c *http.Client, authority string, x httpExchange) error {
	var body io.Reader
	if x.body != nil {
		body = bytes.NewReader(x.body)
	}
	req, err := http.NewRequest(x.method, "http://"+authority+x.path, body)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", x.method, x.path, err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("%s %s: read body: %w", x.method, x.path, err)
	case resp.StatusCode != x.status:
		return fmt.Errorf("%s %s: status %d, want %d (l5d-proxy-error %q)", x.method, x.path, resp.StatusCode, x.status, resp.Header.Get("l5d-proxy-error"))
	case x.wantBody != nil && !bytes.Equal(got, x.wantBody):
		return fmt.Errorf("%s %s: %d bytes back, want %d", x.method, x.path, len(got), len(x.wantBody))
	case x.wantLength != -2 && resp.ContentLength != x.wantLength:
		return fmt.Errorf("%s %s: Content-Length %d, want %d", x.method, x.path, resp.ContentLength, x.wantLength)
	case resp.ProtoMajor != 1 || resp.Header.Get("l5d-orig-proto") != "":
		return fmt.Errorf("%s %s: response %s with l5d-orig-proto %q", x.method, x.path, resp.Proto, resp.Header.Get("l5d-orig-proto"))
	case x.path == "/echo" && resp.Header.Get("X-Echo-Proto") != "HTTP/1.1":
		return fmt.Errorf("the app got %q, want HTTP/1.1", resp.Header.Get("X-Echo-Proto"))
	}
	return nil
}

// TestHTTP1OverH2 sends HTTP/1.1 from many client connections at once
// through two meshed proxies: between the proxies they share one HTTP/2
// mTLS connection (l5d-orig-proto), and the application gets HTTP/1.1.
func TestHTTP1OverH2(t *testing.T) {
	m := newMesh(t, true)
	a, b := m.client, m.server
	authority := b.Addr(httpPort)
	large := make([]byte, 1<<20)
	_, _ = rand.Read(large)
	hello := []byte("testapp server")
	exchanges := []httpExchange{
		{method: "GET", path: "/", status: 200, wantBody: hello, wantLength: int64(len(hello))},
		{method: "HEAD", path: "/", status: 200, wantBody: []byte{}, wantLength: -2},
		{method: "POST", path: "/echo", body: []byte("small body"), status: 200, wantBody: []byte("small body"), wantLength: -1},
		{method: "POST", path: "/echo", body: large, status: 200, wantBody: large, wantLength: -1},
		{method: "GET", path: "/status/204", status: 204, wantBody: []byte{}, wantLength: 0},
		{method: "GET", path: "/status/304", status: 304, wantBody: []byte{}, wantLength: 0},
		{method: "GET", path: "/status/503", status: 503, wantBody: []byte("503 Service Unavailable\n"), wantLength: -2},
	}
	const clients, rounds = 8, 3
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := a.httpClient(false) // its own connections to the proxy
			defer c.CloseIdleConnections()
			for range rounds {
				for _, x := range exchanges {
					if err := checkExchange(c, authority, x); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := float64(clients * rounds * len(exchanges))
	out := with(m.outTLS(), "authority", authority, "direction", "outbound")
	in := with(m.inTLS(), "authority", authority, "direction", "inbound")
	a.waitMetric(t, "request_total", out, n)
	b.waitMetric(t, "request_total", in, n)
	for _, p := range []struct {
		pod    *meshedPod
		labels map[string]string
	}{{a, out}, {b, in}} {
		p.pod.waitMetric(t, "response_total", with(p.labels, "status_code", "200", "classification", "success"), clients*rounds*4)
		p.pod.waitMetric(t, "response_total", with(p.labels, "status_code", "204"), clients*rounds)
		p.pod.waitMetric(t, "response_total", with(p.labels, "status_code", "503", "classification", "failure"), clients*rounds)
	}
	// Many client connections, one connection between the proxies.
	if got := a.metric(t, "tcp_open_total", map[string]string{"direction": "outbound", "peer": "dst", "target_addr": authority, "tls": "true"}); got != 1 {
		t.Errorf("outbound proxy opened %v mTLS connections to the server pod, want 1", got)
	}
	if got := b.metric(t, "tcp_open_total", with(m.inTLS(), "direction", "inbound", "peer", "src", "target_addr", authority)); got != 1 {
		t.Errorf("inbound proxy accepted %v mTLS connections, want 1", got)
	}
	if got := a.metric(t, "tcp_open_total", map[string]string{"direction": "outbound", "peer": "src"}); got < clients {
		t.Errorf("outbound proxy accepted %v client connections, want at least %d", got, clients)
	}

	t.Run("drain on SIGTERM", func(t *testing.T) {
		// Upgraded requests in flight when the server's proxy is told to
		// stop all complete.
		before := b.metric(t, "request_total", in)
		const inFlight = 6
		var wg sync.WaitGroup
		errs := make(chan error, inFlight)
		for i := range inFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := a.httpClient(false)
				defer c.CloseIdleConnections()
				resp, err := c.Get(fmt.Sprintf("http://%s/slow?ms=1500&i=%d", authority, i))
				if err != nil {
					errs <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "slept") {
					errs <- fmt.Errorf("status %d, body %q", resp.StatusCode, body)
				}
			}()
		}
		b.waitMetric(t, "request_total", in, before+inFlight)
		if err := b.proxy.Signal(sigterm); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("in-flight request lost during drain: %v", err)
		}
		select {
		case <-b.proxy.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("proxy did not exit after draining")
		}
	})
}

// TestHTTP1OverH2Disabled checks the client proxy's switch: with
// LINKERD2_PROXY_OUTBOUND_H2_UPGRADE=false, concurrent HTTP/1.1 requests
// between the proxies go on HTTP/1.1 connections, one per request in flight.
func TestHTTP1OverH2Disabled(t *testing.T) {
	m := newMesh(t, true, "LINKERD2_PROXY_OUTBOUND_H2_UPGRADE=false")
	a, b := m.client, m.server
	authority := b.Addr(httpPort)
	const clients = 4
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := a.httpClient(false)
			defer c.CloseIdleConnections()
			<-start
			// Slow requests: all four are in flight at once.
			if err := checkExchange(c, authority, httpExchange{method: "GET", path: "/slow?ms=300", status: 200, wantLength: -2}); err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := b.metric(t, "tcp_open_total", with(m.inTLS(), "direction", "inbound", "peer", "src", "target_addr", authority)); got != clients {
		t.Errorf("inbound proxy accepted %v mTLS connections, want %d (one per request in flight)", got, clients)
	}
}
