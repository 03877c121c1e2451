package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// runMainEnv makes the test binary act as testapp, for TestMainSIGTERM.
const runMainEnv = "TESTAPP_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// addrs are the loopback addresses of an in-process testapp.
type addrs struct {
	http, grpc, tcp, banner string
}

// startApp serves every protocol on loopback ports in-process and stops
// the servers (checking for a clean shutdown) when the test ends.
func startApp(t *testing.T, name string) addrs {
	t.Helper()
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	lns := listeners{http: listen(), grpc: listen(), tcp: listen(), banner: listen()}
	a := addrs{
		http:   lns.http.Addr().String(),
		grpc:   lns.grpc.Addr().String(),
		tcp:    lns.tcp.Addr().String(),
		banner: lns.banner.Addr().String(),
	}
	tw := &testWriter{t: t}
	logger := slog.New(slog.NewTextHandler(tw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := config{name: name, shutdownTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, logger, lns) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve() after shutdown = %v, want nil", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve() did not return after shutdown")
		}
		tw.stop()
	})
	return a
}

// testWriter sends log lines to t.Log until stopped.
type testWriter struct {
	t       *testing.T
	mu      sync.Mutex
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// httpClient returns a client speaking HTTP/1.1 only, or HTTP/2 with prior
// knowledge only.
func httpClient(t *testing.T, h2c bool) *http.Client {
	t.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	if h2c {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    config
		wantErr string
	}{
		{
			name: "defaults",
			want: config{name: "testapp", host: "0.0.0.0", httpPort: 8080, grpcPort: 8082, tcpPort: 8083, bannerPort: 8084, shutdownTimeout: 5 * time.Second, logLevel: slog.LevelInfo},
		},
		{
			name: "ports and name, 0 disables",
			args: []string{"--name", "b", "--http", "9000", "--grpc", "0", "-tcp=0", "--banner", "25", "--log-level", "debug"},
			want: config{name: "b", host: "0.0.0.0", httpPort: 9000, grpcPort: 0, tcpPort: 0, bannerPort: 25, shutdownTimeout: 5 * time.Second, logLevel: slog.LevelDebug},
		},
		{name: "negative port", args: []string{"--tcp", "-1"}, wantErr: "out of range"},
		{name: "port too large", args: []string{"--http", "70000"}, wantErr: "out of range"},
		{name: "not a number", args: []string{"--http", "x"}, wantErr: "invalid value"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "bad shutdown timeout", args: []string{"--shutdown-timeout", "0s"}, wantErr: "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags() error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("parseFlags() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// patternReader yields n deterministic pseudo-random bytes.
func patternReader(seed uint64, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), n)
}

func sha(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, n, err
}

func TestHTTPEcho(t *testing.T) {
	app := startApp(t, "a")
	for _, tc := range []struct {
		name      string
		h2c       bool
		wantProto string
	}{
		{"HTTP/1.1 chunked", false, "HTTP/1.1"},
		{"h2c", true, "HTTP/2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const size = 12 << 20 // many MB, streamed
			pr, pw := io.Pipe()
			req, err := http.NewRequestWithContext(testCtx(t), http.MethodPut, "http://"+app.http+"/echo?x=1", pr)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = -1 // chunked for HTTP/1.1
			req.Header.Set("X-Test-Color", "blue")
			req.Header.Set("X-Other", "not echoed")
			req.Host = "svc.example:8080"
			req.Trailer = http.Header{"X-Checksum": nil}
			go func() {
				_, err := io.Copy(pw, patternReader(1, size))
				req.Trailer.Set("X-Checksum", "abc123")
				pw.CloseWithError(err)
			}()

			resp, err := httpClient(t, tc.h2c).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			wantHeaders := map[string]string{
				"X-Echo-Method":              "PUT",
				"X-Echo-Proto":               tc.wantProto,
				"X-Echo-Host":                "svc.example:8080",
				"X-Echo-Header-X-Test-Color": "blue",
				"X-Echo-Header-X-Other":      "",
			}
			for k, want := range wantHeaders {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("response header %s = %q, want %q", k, got, want)
				}
			}
			if !tc.h2c && len(resp.TransferEncoding) != 1 {
				t.Errorf("HTTP/1.1 response transfer encoding = %v, want chunked", resp.TransferEncoding)
			}
			gotSum, n, err := sha(resp.Body)
			if err != nil {
				t.Fatalf("read echo after %d bytes: %v", n, err)
			}
			wantSum, _, _ := sha(patternReader(1, size))
			if n != size || gotSum != wantSum {
				t.Fatalf("echoed %d bytes (sha %x), want %d bytes (sha %x)", n, gotSum[:4], size, wantSum[:4])
			}
			if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
				t.Fatalf("response trailer X-Checksum = %q, want %q (trailers %v)", got, "abc123", resp.Trailer)
			}
		})
	}
}

// TestHTTPEchoStreams checks that /echo answers each piece before the
// request body ends.
func TestHTTPEchoStreams(t *testing.T) {
	app := startApp(t, "a")
	for _, h2c := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2c=%v", h2c), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			pr, pw := io.Pipe()
			defer pw.Close()
			// Unblock the writer if the server stops reading.
			stop := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
			defer stop()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+app.http+"/echo", pr)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := httpClient(t, h2c).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			for i := range 5 {
				msg := fmt.Sprintf("ping %d;", i)
				if _, err := io.WriteString(pw, msg); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, len(msg))
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
				if string(buf) != msg {
					t.Fatalf("round %d: got %q, want %q", i, buf, msg)
				}
			}
		})
	}
}

func TestHTTPRoutes(t *testing.T) {
	app := startApp(t, "alpha")
	client := httpClient(t, false)
	get := func(t *testing.T, ctx context.Context, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+app.http+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Custom", "v1")
		req.Header.Set("L5d-Dst-Override", "svc:80")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	tests := []struct {
		path       string
		wantStatus int
		wantBody   string // exact unless empty
	}{
		{"/", 200, "testapp alpha"},
		{"/nope", 404, ""},
		{"/status/503", 503, "503 Service Unavailable\n"},
		{"/status/418", 418, "418 I'm a teapot\n"},
		{"/status/204", 204, ""},
		{"/status/99", 400, ""},
		{"/status/abc", 400, ""},
		{"/slow?ms=30", 200, "slept 30 ms\n"},
		{"/slow?ms=-1", 400, ""},
		{"/slow", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, testCtx(t), tt.path)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Fatalf("body = %q, want %q", body, tt.wantBody)
			}
		})
	}

	t.Run("/slow waits", func(t *testing.T) {
		start := time.Now()
		get(t, testCtx(t), "/slow?ms=200")
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Fatalf("/slow?ms=200 answered after %v", d)
		}
	})

	t.Run("/slow honours cancellation", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+app.http+"/slow?ms=30000", nil)
		start := time.Now()
		_, err := client.Do(req)
		if err == nil || time.Since(start) > 5*time.Second {
			t.Fatalf("Do() = %v after %v, want a prompt cancellation", err, time.Since(start))
		}
	})

	t.Run("/headers", func(t *testing.T) {
		resp, body := get(t, testCtx(t), "/headers")
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type = %q", ct)
		}
		var hdrs map[string][]string
		if err := json.Unmarshal([]byte(body), &hdrs); err != nil {
			t.Fatalf("decode %q: %v", body, err)
		}
		want := map[string]string{"X-Custom": "v1", "L5d-Dst-Override": "svc:80", "Host": app.http}
		for k, v := range want {
			if got := hdrs[k]; len(got) != 1 || got[0] != v {
				t.Errorf("headers[%s] = %q, want [%q]", k, got, v)
			}
		}
	})
}

func TestGRPC(t *testing.T) {
	app := startApp(t, "a")
	conn, err := grpc.NewClient("passthrough:///"+app.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)
	ctx := testCtx(t)

	t.Run("unary ok", func(t *testing.T) {
		resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 321})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(resp.GetPayload().GetBody()); got != 321 {
			t.Fatalf("payload size = %d, want 321", got)
		}
	})

	t.Run("unary requested status", func(t *testing.T) {
		for _, code := range []codes.Code{codes.NotFound, codes.Unavailable, codes.PermissionDenied} {
			_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{
				ResponseStatus: &testpb.EchoStatus{Code: int32(code), Message: "asked for " + code.String()},
			})
			st, _ := status.FromError(err)
			if st.Code() != code || st.Message() != "asked for "+code.String() {
				t.Errorf("UnaryCall() status = %v, want %v %q", st, code, "asked for "+code.String())
			}
		}
	})

	t.Run("server streaming", func(t *testing.T) {
		sizes := []int32{1, 100, 64 << 10, 7}
		req := &testpb.StreamingOutputCallRequest{}
		for _, s := range sizes {
			req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: s})
		}
		stream, err := client.StreamingOutputCall(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var got []int32
		for range len(sizes) + 1 {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, int32(len(resp.GetPayload().GetBody())))
		}
		if fmt.Sprint(got) != fmt.Sprint(sizes) {
			t.Fatalf("streamed sizes %v, want %v", got, sizes)
		}
	})

	t.Run("health", func(t *testing.T) {
		h := healthpb.NewHealthClient(conn)
		for _, svc := range []string{"", testServiceName} {
			resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("health of %q = %v", svc, resp.GetStatus())
			}
		}
	})
}

func TestWebSocketEcho(t *testing.T) {
	app := startApp(t, "a")
	ws, err := websocket.Dial("ws://"+app.http+"/ws", "", "http://"+app.http+"/")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetDeadline(time.Now().Add(10 * time.Second))
	big := bytes.Repeat([]byte{0, 1, 2, 250}, 64<<10)
	for _, f := range []wsFrame{
		{websocket.TextFrame, []byte("hello websocket")},
		{websocket.BinaryFrame, big},
		{websocket.TextFrame, []byte("bye")},
	} {
		if err := wsFrameCodec.Send(ws, f); err != nil {
			t.Fatal(err)
		}
		var got wsFrame
		if err := wsFrameCodec.Receive(ws, &got); err != nil {
			t.Fatal(err)
		}
		if got.typ != f.typ || !bytes.Equal(got.data, f.data) {
			t.Fatalf("echo = type %d, %d bytes; want type %d, %d bytes", got.typ, len(got.data), f.typ, len(f.data))
		}
	}
}

func TestTCPEchoHalfClose(t *testing.T) {
	app := startApp(t, "a")
	const size = 4 << 20
	c, err := net.Dial("tcp", app.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	writeErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, patternReader(2, size))
		if err == nil {
			// Half-close: the server must still send everything back.
			err = c.(*net.TCPConn).CloseWrite()
		}
		writeErr <- err
	}()
	gotSum, n, err := sha(c) // reads until the server's FIN
	if err != nil {
		t.Fatalf("read after %d bytes: %v", n, err)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	wantSum, _, _ := sha(patternReader(2, size))
	if n != size || gotSum != wantSum {
		t.Fatalf("echoed %d bytes, want %d identical bytes", n, size)
	}
}

func TestBanner(t *testing.T) {
	app := startApp(t, "a")
	c, err := net.Dial("tcp", app.banner)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	// The server speaks first, before the client sends anything.
	line, err := r.ReadString('\n')
	if err != nil || line != "220 testapp ready\r\n" {
		t.Fatalf("banner = %q, %v", line, err)
	}
	for _, msg := range []string{"HELO test\r\n", "plain newline\n", "\n"} {
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("echo of %q = %q, %v", msg, got, err)
		}
	}
	// A final line without newline comes back before the server closes.
	io.WriteString(c, "partial")
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "partial" {
		t.Fatalf("after half-close got %q, %v; want %q", rest, err, "partial")
	}
}

func TestShutdownWithOpenConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	cfg := config{name: "x", shutdownTimeout: 5 * time.Second}
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler), listeners{tcp: ln, http: httpLn}) }()

	// An idle echo connection and an in-flight slow request.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "x")
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	slow := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + httpLn.Addr().String() + "/slow?ms=300")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		slow <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the request reach the handler

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve() = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve() did not return after cancel")
	}
	if err := <-slow; err != nil {
		t.Fatalf("in-flight request during graceful shutdown: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("echo connection still open after shutdown")
	}
}

func TestRunDisabledPorts(t *testing.T) {
	err := run(context.Background(), config{host: "127.0.0.1", shutdownTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("run() with every port 0 = %v, want an error", err)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestMainSIGTERM runs the real main (the test binary re-executed) and
// checks it serves on the flagged port and exits 0 on SIGTERM.
func TestMainSIGTERM(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command(os.Args[0], "--host", "127.0.0.1", "--http", "0", "--grpc", "0", "--banner", "0", "--tcp", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
	}()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var c net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		c, err = net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("testapp never listened on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "hi")
	c.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "hi" {
		t.Fatalf("echo = %q, %v", b, err)
	}
	c.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("testapp exit after SIGTERM = %v, want 0\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("testapp did not exit after SIGTERM\n%s", stderr.String())
	}
	if out := stderr.String(); !strings.Contains(out, "msg=listening") || !strings.Contains(out, "testapp stopped") {
		t.Fatalf("unexpected log output:\n%s", out)
	}
}
