package h2

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/internal/proxytest"
)

// netHTTPServer is net/http's HTTP/2 server, prior knowledge, on loopback.
func netHTTPServer(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// dialClient opens one of our client connections to addr.
func dialClient(t testing.TB, addr string) *Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := NewClientConn(nc, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func reqFields(method, path string, extra ...Field) []Field {
	return append([]Field{{Name: ":method", Value: method}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "test.example"}, {Name: ":path", Value: path}}, extra...)
}

// roundTrip sends a request on cc and reads the whole response.
func roundTrip(cc *Conn, fields []Field, body []byte) (Head, []byte, []Field, error) {
	if !cc.Reserve() {
		return Head{}, nil, nil, errors.New("no stream slot")
	}
	s, err := cc.Open(fields, body, true)
	if err != nil {
		return Head{}, nil, nil, err
	}
	defer s.Close()
	head, err := s.ReadHead()
	for err == nil && head.Status < 200 {
		head, err = s.ReadHead()
	}
	if err != nil {
		return Head{}, nil, nil, err
	}
	got, err := io.ReadAll(s)
	return head, got, s.Trailers(), err
}

func TestClientAgainstNetHTTP(t *testing.T) {
	addr := netHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("Trailer", "X-Len")
			w.Header().Set("X-Got-Trailer", "")
			b, _ := io.ReadAll(r.Body)
			_, _ = w.Write(b)
			w.Header().Set("X-Len", strconv.Itoa(len(b)))
		case "/status":
			code, _ := strconv.Atoi(r.URL.Query().Get("code"))
			w.WriteHeader(code)
		case "/continue":
			w.WriteHeader(http.StatusEarlyHints)
			_, _ = io.WriteString(w, "after hints")
		}
	})
	cc := dialClient(t, addr)
	big := make([]byte, 5<<20) // several windows each way
	_, _ = rand.Read(big)
	for _, tc := range []struct {
		name       string
		path       string
		body       []byte
		status     int
		wantBody   []byte
		wantTrLen  string
		wantNoBody bool
	}{
		{name: "small echo", path: "/echo", body: []byte("hello"), status: 200, wantBody: []byte("hello"), wantTrLen: "5"},
		{name: "empty", path: "/echo", status: 200, wantTrLen: "0"},
		{name: "large echo", path: "/echo", body: big, status: 200, wantBody: big, wantTrLen: strconv.Itoa(len(big))},
		{name: "404", path: "/status?code=404", status: 404},
		{name: "interim then final", path: "/continue", status: 200, wantBody: []byte("after hints")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if tc.body != nil {
				method = "POST"
			}
			head, got, tr, err := roundTrip(cc, reqFields(method, tc.path), tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if head.Status != tc.status {
				t.Fatalf("status %d, want %d", head.Status, tc.status)
			}
			if !bytes.Equal(got, tc.wantBody) {
				t.Fatalf("body: %d bytes, want %d", len(got), len(tc.wantBody))
			}
			if tc.wantTrLen != "" {
				if len(tr) != 1 || tr[0].Name != "x-len" || tr[0].Value != tc.wantTrLen {
					t.Fatalf("trailers %v, want x-len: %s", tr, tc.wantTrLen)
				}
			}
		})
	}
	if n := cc.Streams(); n != 0 {
		t.Errorf("%d streams left open", n)
	}
}

// TestClientConcurrentStreams runs many requests at once on one connection.
func TestClientConcurrentStreams(t *testing.T) {
	addr := netHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "%s:%s", r.URL.Path, b)
	})
	cc := dialClient(t, addr)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				path, body := fmt.Sprintf("/%d/%d", i, j), strings.Repeat("b", i*j)
				_, got, _, err := roundTrip(cc, reqFields("POST", path), []byte(body))
				if err == nil && string(got) != path+":"+body {
					err = fmt.Errorf("%s: got %q", path, got)
				}
				if err != nil {
					errs <- err
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
}

// serve runs our server with handler on a loopback listener.
func serve(t testing.TB, handler func(*Stream)) (string, func() []*Conn) {
	t.Helper()
	var mu sync.Mutex
	var conns []*Conn
	addr := proxytest.Serve(t, func(_ context.Context, c net.Conn) {
		_ = ServeConn(c, Options{}, handler, func(cc *Conn) {
			mu.Lock()
			conns = append(conns, cc)
			mu.Unlock()
		})
	})
	// Registered after Serve, so it runs before the handlers are waited for.
	t.Cleanup(func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return addr, func() []*Conn {
		mu.Lock()
		defer mu.Unlock()
		return append([]*Conn(nil), conns...)
	}
}

func echoStream(s *Stream) {
	defer s.Close()
	head, err := s.ReadHead()
	if err != nil {
		return
	}
	body, err := io.ReadAll(s)
	if err != nil {
		return
	}
	if err := s.Respond([]Field{{Name: ":status", Value: "200"}, {Name: "trailer", Value: "x-path"}}, body, false); err != nil {
		return
	}
	tr := []Field{{Name: "x-path", Value: head.Value(":path")}}
	for _, f := range s.Trailers() {
		tr = append(tr, Field{Name: "x-echo-" + f.Name, Value: f.Value})
	}
	_ = s.WriteTrailers(tr)
}

// netHTTPClient is net/http's HTTP/2 client, prior knowledge.
func netHTTPClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p}, Timeout: 20 * time.Second}
}

func TestServerAgainstNetHTTP(t *testing.T) {
	addr, _ := serve(t, echoStream)
	c := netHTTPClient()
	big := make([]byte, 5<<20)
	_, _ = rand.Read(big)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := []byte(fmt.Sprint("request ", i))
			if i == 0 {
				body = big
			}
			req, _ := http.NewRequest("POST", fmt.Sprintf("http://%s/p/%d", addr, i), io.NopCloser(bytes.NewReader(body)))
			req.Trailer = http.Header{"X-Sum": {"s" + fmt.Sprint(i)}}
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("request %d: %d bytes back, %v", i, len(got), err)
				return
			}
			if p := resp.Trailer.Get("X-Path"); p != fmt.Sprintf("/p/%d", i) {
				t.Errorf("request %d: trailer x-path %q", i, p)
			}
			if v := resp.Trailer.Get("X-Echo-X-Sum"); v != "s"+fmt.Sprint(i) {
				t.Errorf("request %d: request trailer echoed as %q", i, v)
			}
		}()
	}
	wg.Wait()
}

// TestClientResetReachesServer checks that cancelling a stream tells the
// server's handler.
func TestClientResetReachesServer(t *testing.T) {
	reset := make(chan struct{})
	addr, _ := serve(t, func(s *Stream) {
		defer s.Close()
		s.OnReset(func() { close(reset) })
		_, _ = s.ReadHead()
		<-reset
	})
	cc := dialClient(t, addr)
	if !cc.Reserve() {
		t.Fatal("no stream slot")
	}
	s, err := cc.Open(reqFields("GET", "/"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	s.Cancel()
	s.Close()
	select {
	case <-reset:
	case <-time.After(5 * time.Second):
		t.Fatal("the server's handler did not see the reset")
	}
}

// TestShutdownDrains checks GOAWAY: the stream in flight finishes, a new
// request fails as unprocessed (retryable) and the connection closes.
func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	addr, conns := serve(t, func(s *Stream) {
		defer s.Close()
		if _, err := s.ReadHead(); err != nil {
			return
		}
		<-release
		_ = s.Respond([]Field{{Name: ":status", Value: "200"}}, []byte("done"), true)
	})
	cc := dialClient(t, addr)
	if !cc.Reserve() {
		t.Fatal("no stream slot")
	}
	s, err := cc.Open(reqFields("GET", "/slow"), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testkit.EventuallyTrue(t, 5*time.Second, "the request to arrive", func() bool {
		return len(conns()) > 0 && conns()[0].Streams() > 0
	})
	done := make(chan error, 1)
	go func() { done <- conns()[0].Shutdown(context.Background()) }()
	testkit.EventuallyTrue(t, 5*time.Second, "a GOAWAY", func() bool { return !cc.usable() })
	if cc.Reserve() {
		t.Fatal("a stream slot on a connection going away")
	}
	close(release)
	head, err := s.ReadHead()
	if err != nil || head.Status != 200 {
		t.Fatalf("request in flight: %v %v", head, err)
	}
	if b, err := io.ReadAll(s); err != nil || string(b) != "done" {
		t.Fatalf("body %q %v", b, err)
	}
	s.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	select {
	case <-cc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client connection still up")
	}
}

// TestGoAwayFailsUnprocessed checks that a stream above GOAWAY's last ID
// fails with ErrUnprocessed.
func TestGoAwayFailsUnprocessed(t *testing.T) {
	addr, conns := serve(t, echoStream)
	cc := dialClient(t, addr)
	if _, _, _, err := roundTrip(cc, reqFields("GET", "/first"), nil); err != nil {
		t.Fatal(err)
	}
	if !cc.Reserve() {
		t.Fatal("no stream slot")
	}
	// A stream the server has not seen (no END_STREAM, no DATA yet): GOAWAY
	// names the first stream as the last one processed.
	srv := conns()[0]
	srv.mu.Lock()
	last := srv.lastID
	srv.goAway = true
	srv.mu.Unlock()
	s, err := cc.Open(reqFields("GET", "/second"), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv.writeControl(func() error { return srv.fr.WriteGoAway(last, 0, nil) })
	_, err = s.ReadHead()
	if !errors.Is(err, ErrUnprocessed) {
		t.Fatalf("stream above GOAWAY: %v, want ErrUnprocessed", err)
	}
}

func TestPoolSharesConnections(t *testing.T) {
	addr, _ := serve(t, echoStream)
	for _, spread := range []int{1, 3} {
		t.Run(fmt.Sprint("spread ", spread), func(t *testing.T) {
			var dials atomic.Int64
			p := NewPool(PoolOptions{Spread: spread, Dial: func(ctx context.Context, ep *balance.Endpoint) (net.Conn, error) {
				dials.Add(1)
				time.Sleep(20 * time.Millisecond) // let the others pile up
				return (&net.Dialer{}).DialContext(ctx, "tcp", ep.Addr.String())
			}})
			defer p.Close()
			ep := &balance.Endpoint{Addr: mustAddrPort(t, addr), Identity: "peer"}
			var wg sync.WaitGroup
			for range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cc, err := p.Get(context.Background(), ep)
					if err != nil {
						t.Error(err)
						return
					}
					s, err := cc.Open(reqFields("POST", "/x"), []byte("body"), true)
					if err != nil {
						t.Error(err)
						return
					}
					defer s.Close()
					if _, err := s.ReadHead(); err != nil {
						t.Error(err)
						return
					}
					_, _ = io.ReadAll(s)
				}()
			}
			wg.Wait()
			if n := dials.Load(); n < 1 || n > int64(spread) {
				t.Errorf("%d dials, want 1 to %d", n, spread)
			}
			if n := p.Conns(); n != int(dials.Load()) {
				t.Errorf("%d connections in the pool after %d dials", n, dials.Load())
			}
			p.CloseIdle()
			if n := p.Conns(); n != 0 {
				t.Errorf("%d connections after CloseIdle", n)
			}
		})
	}
}

func TestPoolDialError(t *testing.T) {
	boom := errors.New("boom")
	p := NewPool(PoolOptions{Dial: func(context.Context, *balance.Endpoint) (net.Conn, error) { return nil, boom }})
	defer p.Close()
	_, err := p.Get(context.Background(), &balance.Endpoint{Identity: "peer"})
	if !errors.Is(err, boom) {
		t.Fatalf("Get: %v, want the dial error", err)
	}
	p.Close()
	if _, err := p.Get(context.Background(), &balance.Endpoint{}); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("Get on a closed pool: %v", err)
	}
}

func mustAddrPort(t testing.TB, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
