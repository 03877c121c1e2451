package tap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/linkerd-go/linkerd/internal/testkit"
	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/meshtls"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// endpoint is a layer that picks a fixed endpoint, as balance does.
type endpoint struct{ ep *balance.Endpoint }

func (e endpoint) Serve(ctx context.Context, x *pipeline.Exchange) error {
	x.Endpoint = e.ep
	return x.Next(ctx)
}

// answer is a terminal answering with a status, or failing.
type answer struct {
	status int
	err    error
}

func (a answer) Forward(_ context.Context, x *pipeline.Exchange) error {
	if a.err != nil {
		return a.err
	}
	x.Responded(a.status)
	return nil
}

var ep = &balance.Endpoint{Addr: netip.MustParseAddrPort("10.0.0.9:8080"), Identity: "web.ns.serviceaccount.identity.linkerd.cluster.local",
	Labels: metrics.Labels{{Name: "dst_deployment", Value: "web"}, {Name: "dst_pod", Value: "web-1"}}}

// run sends one request through a chain with the tap layer and returns
// once it finished.
func run(t *testing.T, hub *Hub, method, path string, term answer, grpcStatus int32) {
	t.Helper()
	chain := pipeline.NewChain(endpoint{ep}, &Layer{Hub: hub, Direction: transport.Outbound})
	var x pipeline.Exchange
	x.Reset(&pipeline.Conn{Client: netip.MustParseAddrPort("10.0.0.1:40000")}, pipeline.HTTP1, time.Now())
	x.Method, x.Authority, x.Path = method, "web.ns:8080", path
	if err := chain.Serve(context.Background(), &x, term); err != nil {
		x.Fail(0, err)
	} else {
		x.GRPCStatus = grpcStatus
	}
	x.Finish(nil)
}

func events(tp *Tap) []*tapv1.TapEvent {
	var evs []*tapv1.TapEvent
	for {
		select {
		case ev := <-tp.Events():
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

func TestLayerEvents(t *testing.T) {
	hub := NewHub(metrics.NewRegistry())
	run(t, hub, "GET", "/untapped", answer{status: 200}, -1) // nothing attached: nothing to see
	tp := hub.Attach(&tapv1.Match{PathPrefix: "/api"}, 0)
	run(t, hub, "GET", "/other", answer{status: 200}, -1)
	run(t, hub, "POST", "/api/vote", answer{status: 200}, 2)
	run(t, hub, "GET", "/api/gone", answer{err: context.DeadlineExceeded}, -1)
	evs := events(tp)
	if len(evs) != 6 {
		t.Fatalf("%d events, want 6 (two requests of 3 each): %v", len(evs), evs)
	}
	req := evs[0].GetRequestInit()
	if req == nil || req.Method != "POST" || req.Path != "/api/vote" || req.Authority != "web.ns:8080" {
		t.Errorf("request-init %v", evs[0])
	}
	// The destination metadata is encoded once per endpoint: the tap
	// client decodes it as the map.
	wire, err := proto.Marshal(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	got := &tapv1.TapEvent{}
	if err := proto.Unmarshal(wire, got); err != nil {
		t.Fatal(err)
	}
	wantMeta := map[string]string{"deployment": "web", "pod": "web-1"}
	if got.Destination != "10.0.0.9:8080" || got.Tls != "true" || got.ServerId != ep.Identity || !maps.Equal(got.DestinationMeta, wantMeta) ||
		len(got.ProtoReflect().GetUnknown()) != 0 {
		t.Errorf("request-init metadata %v, want destination meta %v", got, wantMeta)
	}
	// Only request-init carries the exchange's fields.
	for _, ev := range []*tapv1.TapEvent{evs[1], evs[2]} {
		if ev.Direction != "" || ev.Source != "" || ev.Destination != "" || ev.Tls != "" || ev.ServerId != "" || ev.DestinationMeta != nil {
			t.Errorf("response event with the exchange's fields %v", ev)
		}
	}
	if rsp := evs[1].GetResponseInit(); rsp == nil || rsp.Id != req.Id || rsp.HttpStatus != 200 {
		t.Errorf("response-init %v", evs[1])
	}
	if end := evs[2].GetResponseEnd(); end == nil || end.Id != req.Id || end.GrpcStatus != 2 || end.ProxyError {
		t.Errorf("response-end %v", evs[2])
	}
	// The proxy's own answer (a timeout: 504) shows as the response.
	if rsp := evs[4].GetResponseInit(); rsp == nil || rsp.HttpStatus != 504 {
		t.Errorf("response-init of the failed request %v", evs[4])
	}
	if end := evs[5].GetResponseEnd(); end == nil || !end.ProxyError || end.Error == "" {
		t.Errorf("response-end of the failed request %v", evs[5])
	}
	hub.Detach(tp)
	run(t, hub, "GET", "/api/after", answer{status: 200}, -1)
	if evs := events(tp); len(evs) != 0 {
		t.Errorf("events after detaching: %v", evs)
	}
}

func TestLayerLimitAndSlowTap(t *testing.T) {
	reg := metrics.NewRegistry()
	hub := NewHub(reg)
	tp := hub.Attach(nil, 5) // 5 requests per second
	for range 20 {
		run(t, hub, "GET", "/", answer{status: 200}, -1)
	}
	if n := len(events(tp)); n != 5*3 {
		t.Errorf("%d events for 20 requests at a limit of 5/s, want 15", n)
	}
	hub.Detach(tp)

	// A tap that never reads: events are dropped, the requests go on.
	slow := hub.Attach(nil, MaxLimit)
	for range queueLen {
		run(t, hub, "GET", "/", answer{status: 200}, -1)
	}
	if got := reg.Counter("tap_events_dropped_total", nil).Value(); got != 2*queueLen {
		t.Errorf("dropped %d events, want %d", got, 2*queueLen)
	}
	hub.Detach(slow)
}

// tlsFor returns a mesh TLS source for name.
type source struct {
	name  string
	cert  tls.Certificate
	roots *x509.CertPool
}

func (s *source) Name() string                  { return s.name }
func (s *source) Certificate() *tls.Certificate { return &s.cert }
func (s *source) Roots() *x509.CertPool         { return s.roots }

func TestServerOnlyServesTheTapIdentity(t *testing.T) {
	const (
		proxyID = "web.ns.serviceaccount.identity.linkerd.cluster.local"
		tapID   = "tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"
		otherID = "bot.ns.serviceaccount.identity.linkerd.cluster.local"
	)
	ca := testkit.NewMeshCA(t, time.Hour)
	src := func(name string) *source {
		return &source{name: name, cert: ca.Leaf(t, name, time.Hour), roots: ca.Pool()}
	}
	reg := metrics.NewRegistry()
	hub := NewHub(reg)
	srv := &Server{Hub: hub, Identity: tapID, Metrics: reg, Logger: testLogger()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, meshtls.New(src(proxyID)).Server()) }()
	t.Cleanup(func() { cancel(); <-done })

	observe := func(creds credentials.TransportCredentials) (tapv1.Tap_ObserveClient, error) {
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		t.Cleanup(ccancel)
		s, err := tapv1.NewTapClient(conn).Observe(cctx, &tapv1.ObserveRequest{})
		if err != nil {
			return nil, err
		}
		_, err = s.Header() // the server's answer to the call
		return s, err
	}
	clientTLS := func(name string) credentials.TransportCredentials {
		return credentials.NewTLS(meshtls.New(src(name)).Client(proxyID, ""))
	}
	// Another meshed identity and a plaintext client are refused.
	for name, creds := range map[string]credentials.TransportCredentials{"other identity": clientTLS(otherID), "plaintext": insecure.NewCredentials()} {
		s, err := observe(creds)
		if err == nil {
			_, err = s.Recv()
		}
		if name == "other identity" && status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: %v, want PermissionDenied", name, err)
		}
		if err == nil {
			t.Errorf("%s: served", name)
		}
	}
	if n := reg.Counter("tap_denied_total", nil).Value(); n < 1 {
		t.Errorf("tap_denied_total = %d", n)
	}
	// The tap service's identity is served.
	s, err := observe(clientTLS(tapID))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for hub.n.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the tap never attached")
		}
		time.Sleep(5 * time.Millisecond)
	}
	run(t, hub, "GET", "/hello", answer{status: 200}, -1)
	batch, err := s.Recv()
	if err != nil || len(batch.GetEvents()) != 3 || batch.GetEvents()[0].GetRequestInit().GetPath() != "/hello" {
		t.Fatalf("first batch %v, %v; want the request's three events, request-init first", batch, err)
	}
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestSendBatches(t *testing.T) {
	ev := func(path string) *tapv1.TapEvent {
		return &tapv1.TapEvent{Event: &tapv1.TapEvent_RequestInit{RequestInit: &tapv1.RequestInit{Path: path}}}
	}
	paths := func(b *tapv1.TapEvents) []string {
		var p []string
		for _, e := range b.GetEvents() {
			p = append(p, e.GetRequestInit().GetPath())
		}
		return p
	}
	t.Run("events of one interval go in one message, in order", func(t *testing.T) {
		events := make(chan *tapv1.TapEvent, 10)
		for _, p := range []string{"/a", "/b", "/c"} {
			events <- ev(p)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var got [][]string
		err := sendBatches(ctx, events, nil, 20*time.Millisecond, func(b *tapv1.TapEvents) error {
			got = append(got, paths(b))
			cancel()
			return nil
		})
		if err != nil || len(got) != 1 || strings.Join(got[0], ",") != "/a,/b,/c" {
			t.Fatalf("got %v, %v; want one batch /a,/b,/c", got, err)
		}
	})
	t.Run("a full batch goes at once", func(t *testing.T) {
		events := make(chan *tapv1.TapEvent, maxBatch+1)
		for i := range maxBatch + 1 {
			events <- ev(fmt.Sprint(i))
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		full := make(chan struct{}, 1)
		full <- struct{}{} // as the hub signals it
		var sizes []int
		start := time.Now()
		err := sendBatches(ctx, events, full, time.Hour, func(b *tapv1.TapEvents) error {
			sizes = append(sizes, len(b.GetEvents()))
			cancel()
			return nil
		})
		if err != nil || len(sizes) != 1 || sizes[0] != maxBatch || time.Since(start) > time.Minute {
			t.Fatalf("sizes %v, %v; want one batch of %d without waiting the interval", sizes, err, maxBatch)
		}
	})
	t.Run("a failed send ends the stream", func(t *testing.T) {
		events := make(chan *tapv1.TapEvent, 1)
		events <- ev("/a")
		boom := errors.New("boom")
		if err := sendBatches(context.Background(), events, nil, time.Millisecond, func(*tapv1.TapEvents) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("got %v, want %v", err, boom)
		}
	})
	t.Run("the end of the context ends it while collecting", func(t *testing.T) {
		events := make(chan *tapv1.TapEvent, 1)
		events <- ev("/a")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if err := sendBatches(ctx, events, nil, time.Hour, func(*tapv1.TapEvents) error { t.Error("sent"); return nil }); err != nil {
			t.Fatal(err)
		}
	})
}
