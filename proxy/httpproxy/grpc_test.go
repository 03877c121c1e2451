package httpproxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/proxy/metrics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// healthBackend serves gRPC's health service on ln.
func healthBackend(ln net.Listener) *grpc.Server {
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go func() { _ = s.Serve(ln) }()
	return s
}

// TestGRPCStreamAcrossBackendRestart: a server-streaming gRPC call through
// the proxy (alone, and through a meshed pair with mTLS between the
// proxies) gets its messages; when the backend goes away (stopped at once,
// or gracefully) the call ends, calls meanwhile fail with UNAVAILABLE, and
// once a new backend listens on the same address, two calls at once (on
// one new connection) work.
func TestGRPCStreamAcrossBackendRestart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pair     bool
		graceful bool
	}{
		{"proxy", false, false},
		{"meshed pair", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			srv := healthBackend(ln)
			proxy := ""
			if tc.pair {
				proxy = newMeshPair(t, addr, true).addr
			} else {
				proxy = newHarness(t, addr).addr
			}
			conn, err := grpc.NewClient(proxy, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			client := healthpb.NewHealthClient(conn)
			// call starts a Watch and returns it after its first message.
			call := func() (healthpb.Health_WatchClient, context.CancelFunc, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
				if err == nil {
					_, err = w.Recv()
				}
				if err != nil {
					cancel()
				}
				return w, cancel, err
			}
			w, cancel, err := call()
			if err != nil {
				t.Fatal(err)
			}
			if tc.graceful {
				go srv.GracefulStop()
				time.Sleep(100 * time.Millisecond)
			}
			srv.Stop()
			if _, err := w.Recv(); err == nil {
				t.Fatal("the call went on after its backend stopped")
			}
			cancel()
			for range 3 {
				if _, _, err := call(); status.Code(err) != codes.Unavailable {
					t.Fatalf("call without a backend: %v, want UNAVAILABLE", err)
				}
			}
			for i := 0; ; i++ {
				if ln, err = net.Listen("tcp", addr); err == nil {
					break
				}
				if i > 50 {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			srv = healthBackend(ln)
			defer srv.Stop()
			errs := make(chan error, 2)
			for range 2 {
				go func() {
					_, cancel, err := call()
					if err == nil {
						cancel()
					}
					errs <- err
				}()
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Errorf("call on the restarted backend: %v", err)
				}
			}
		})
	}
}

// TestH2ResponseEndsBeforeRequest: a server that answers and ends its
// response while the client is still sending (a bidi stream the server
// closes first) ends the exchange: it is counted, and the client's stream
// does not hang.
func TestH2ResponseEndsBeforeRequest(t *testing.T) {
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Early", "1")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "done early")
	}))
	h := newHarness(t, be.Listener.Addr().String())
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest("POST", "http://early.example/stream", pr)
	resp, err := h2cClient(h.addr).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "done early" {
		t.Fatalf("body %q, %v", b, err)
	}
	m := h.metrics("early.example")
	if n := eventually(func() uint64 { return m.ResponseCount(metrics.ResponseKey{Status: 200, GRPCStatus: -1}) }, 1); n != 1 {
		t.Fatalf("response_total = %d: the exchange never ended", n)
	}
}
