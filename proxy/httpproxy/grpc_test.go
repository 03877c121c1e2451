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

// TestGRPCStreamAcrossBackendRestart: a server-streaming gRPC call through
// the proxy gets its messages; when the backend goes away the call ends,
// and once a new backend listens on the same address a new call works.
func TestGRPCStreamAcrossBackendRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	start := func(ln net.Listener) *grpc.Server {
		s := grpc.NewServer()
		healthpb.RegisterHealthServer(s, health.NewServer())
		go func() { _ = s.Serve(ln) }()
		return s
	}
	srv := start(ln)
	h := newHarness(t, addr)
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	watch := func() (healthpb.Health_WatchClient, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			cancel()
			t.Fatalf("first message: %v", err)
		}
		return w, cancel
	}
	w, cancel := watch()
	srv.Stop()
	if _, err := w.Recv(); err == nil {
		t.Fatal("the call went on after its backend stopped")
	}
	cancel()
	// While nothing listens, calls fail with UNAVAILABLE from the proxy.
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = w.Recv()
		}
		cancel()
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("call without a backend: %v, want UNAVAILABLE", err)
		}
	}
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		if i > 50 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv = start(ln)
	defer srv.Stop()
	_, cancel = watch()
	cancel()
}

// TestGRPCStreamThroughPairAcrossRestart is the same through a meshed pair
// (mTLS between the proxies), the backend stopping gracefully.
func TestGRPCStreamThroughPairAcrossRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	start := func(ln net.Listener) *grpc.Server {
		s := grpc.NewServer()
		healthpb.RegisterHealthServer(s, health.NewServer())
		go func() { _ = s.Serve(ln) }()
		return s
	}
	srv := start(ln)
	m := newMeshPair(t, addr, true)
	conn, err := grpc.NewClient(m.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	watch := func() (healthpb.Health_WatchClient, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			cancel()
			t.Fatalf("first message: %v", err)
		}
		return w, cancel
	}
	w, cancel := watch()
	w2, cancel2 := watch()
	go srv.GracefulStop()
	time.Sleep(100 * time.Millisecond)
	srv.Stop()
	if _, err := w.Recv(); err == nil {
		t.Fatal("the call went on after its backend stopped")
	}
	if _, err := w2.Recv(); err == nil {
		t.Fatal("the call went on after its backend stopped")
	}
	cancel()
	cancel2()
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = w.Recv()
		}
		cancel()
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("call without a backend: %v, want UNAVAILABLE", err)
		}
	}
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		if i > 50 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv = start(ln)
	defer srv.Stop()
	// Two calls at once on the new backend (the proxy opens one new
	// connection for both).
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = w.Recv()
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("call on the restarted backend: %v", err)
		}
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
