package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd/internal/testkit"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/balance"
)

// fakeDestination streams scripted updates per authority (a unit-test fake;
// the real server is tested in controller/destination).
type fakeDestination struct {
	destinationv1.UnimplementedDestinationServer
	mu      sync.Mutex
	streams map[string]chan *destinationv1.Update
	open    map[string]int
}

func (f *fakeDestination) ch(authority string) chan *destinationv1.Update {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.streams[authority] == nil {
		f.streams[authority] = make(chan *destinationv1.Update, 16)
	}
	return f.streams[authority]
}

func (f *fakeDestination) openStreams(authority string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open[authority]
}

func (f *fakeDestination) Get(req *destinationv1.GetRequest, stream destinationv1.Destination_GetServer) error {
	ch := f.ch(req.Authority)
	f.mu.Lock()
	f.open[req.Authority]++
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.open[req.Authority]--; f.mu.Unlock() }()
	for {
		select {
		case u := <-ch:
			if u == nil {
				return status.Error(codes.Unavailable, "stream ended by the test")
			}
			if err := stream.Send(u); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

func addUpdate(identity string, addrs ...string) *destinationv1.Update {
	set := &destinationv1.EndpointSet{MetricLabels: map[string]string{"namespace": "demo", "service": "web"}}
	for _, a := range addrs {
		ap := netip.MustParseAddrPort(a)
		set.Endpoints = append(set.Endpoints, &destinationv1.Endpoint{
			Addr: &destinationv1.TcpAddress{Ip: ap.Addr().AsSlice(), Port: uint32(ap.Port())}, Weight: 10000,
			TlsIdentity: identity, MetricLabels: map[string]string{"pod": "web-" + a},
			Hint: &destinationv1.ProtocolHint{H2: true, OpaqueTransportPort: 4143},
		})
	}
	return &destinationv1.Update{Kind: &destinationv1.Update_Add{Add: set}}
}

func startFake(t *testing.T) (*fakeDestination, string, func()) {
	t.Helper()
	f := &fakeDestination{streams: map[string]chan *destinationv1.Update{}, open: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	destinationv1.RegisterDestinationServer(s, f)
	go func() { _ = s.Serve(ln) }() // returns at s.Stop
	return f, ln.Addr().String(), s.Stop
}

func newClient(t *testing.T, addr string, idle time.Duration) *Client {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(conn, ClientOptions{
		Suffixes: []string{"svc.cluster.local."}, Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		IdleTimeout: idle, InitialTimeout: 300 * time.Millisecond,
		Fallback: OriginalDst{NoTLSReason: "not_provided_by_service_discovery"}, Logger: slog.New(slog.DiscardHandler),
	})
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

func pick(t *testing.T, c *Client, dst Destination) *balance.Endpoint {
	t.Helper()
	bal, err := c.Resolve(context.Background(), dst)
	if err != nil {
		t.Fatal(err)
	}
	ep, done, err := bal.Pick(context.Background())
	if err != nil {
		t.Fatalf("pick: %v", err)
	}
	done(nil)
	return ep
}

func TestClientResolvesAndFollowsUpdates(t *testing.T) {
	f, addr, stop := startFake(t)
	defer stop()
	c := newClient(t, addr, time.Minute)
	const id = "web.demo.serviceaccount.identity.linkerd.cluster.local"
	f.ch("web.demo.svc.cluster.local:8080") <- addUpdate(id, "10.1.0.5:8080")
	dst := Destination{Authority: "web.demo.svc.cluster.local.:8080", Addr: netip.MustParseAddrPort("10.96.0.10:8080")}

	if got := c.CanonicalName(dst); got != "web.demo.svc.cluster.local:8080" {
		t.Errorf("CanonicalName = %q", got)
	}
	if got := c.CanonicalName(Destination{Addr: dst.Addr}); got != "" {
		t.Errorf("CanonicalName of an address lookup = %q, want none", got)
	}
	ep := pick(t, c, dst)
	if ep.Addr.String() != "10.1.0.5:8080" || ep.Identity != id || ep.OpaqueTransportPort != 4143 {
		t.Fatalf("endpoint %+v", ep)
	}
	if got := ep.Labels.Get("dst_pod"); got != "web-10.1.0.5:8080" || ep.Labels.Get("dst_namespace") != "demo" || ep.Labels.Get("dst_service") != "web" {
		t.Fatalf("labels %v", ep.Labels)
	}

	// The endpoint moves: add the new one, remove the old one.
	f.ch("web.demo.svc.cluster.local:8080") <- addUpdate(id, "10.1.0.6:8080")
	f.ch("web.demo.svc.cluster.local:8080") <- &destinationv1.Update{Kind: &destinationv1.Update_Remove{Remove: &destinationv1.AddressSet{
		Addrs: []*destinationv1.TcpAddress{{Ip: netip.MustParseAddr("10.1.0.5").AsSlice(), Port: 8080}}}}}
	testkit.EventuallyTrue(t, 10*time.Second, "the removal to take effect", func() bool {
		return pick(t, c, dst).Addr.String() == "10.1.0.6:8080"
	})

	// Exists but empty: no endpoint, no fallback.
	f.ch("web.demo.svc.cluster.local:8080") <- &destinationv1.Update{Kind: &destinationv1.Update_NoEndpoints{NoEndpoints: &destinationv1.NoEndpoints{Exists: true}}}
	testkit.Eventually(t, 10*time.Second, func() error {
		bal, _ := c.Resolve(context.Background(), dst)
		if _, _, err := bal.Pick(context.Background()); !errors.Is(err, balance.ErrNoEndpoints) {
			return fmt.Errorf("empty service: Pick = %v, want %v", err, balance.ErrNoEndpoints)
		}
		return nil
	})
}

func TestClientFallsBack(t *testing.T) {
	f, addr, stop := startFake(t)
	defer stop()
	c := newClient(t, addr, time.Minute)

	// Outside the suffixes and networks: not asked at all.
	ep := pick(t, c, Destination{Authority: "example.com", Addr: netip.MustParseAddrPort("192.0.2.1:80")})
	if ep.Addr.String() != "192.0.2.1:80" || ep.NoTLSReason != "not_provided_by_service_discovery" {
		t.Fatalf("endpoint %+v", ep)
	}
	// Asked, and not known: the original destination.
	f.ch("10.2.0.9:80") <- &destinationv1.Update{Kind: &destinationv1.Update_NoEndpoints{NoEndpoints: &destinationv1.NoEndpoints{Exists: false}}}
	if ep := pick(t, c, Destination{Addr: netip.MustParseAddrPort("10.2.0.9:80")}); ep.Addr.String() != "10.2.0.9:80" || ep.Identity != "" {
		t.Fatalf("endpoint %+v", ep)
	}
	// The control plane says nothing in time: forwarded as is.
	start := time.Now()
	if ep := pick(t, c, Destination{Addr: netip.MustParseAddrPort("10.2.0.10:80")}); ep.Addr.String() != "10.2.0.10:80" {
		t.Fatalf("endpoint %+v", ep)
	}
	// Bounded by the lookup's initial timeout, far below the client's
	// one-minute idle timeout (generous: not a performance assertion).
	if waited := time.Since(start); waited > 30*time.Second {
		t.Fatalf("waited %v for a silent control plane", waited)
	}
}

func TestClientKeepsEndpointsWhenControlPlaneGoes(t *testing.T) {
	f, addr, stop := startFake(t)
	c := newClient(t, addr, time.Minute)
	f.ch("10.3.0.1:80") <- addUpdate("db.demo", "10.3.0.1:80")
	dst := Destination{Addr: netip.MustParseAddrPort("10.3.0.1:80")}
	if ep := pick(t, c, dst); ep.Identity != "db.demo" {
		t.Fatalf("endpoint %+v", ep)
	}
	stop()
	// The endpoint stays however long the control plane is away: check it
	// over a while rather than once after a sleep.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if ep := pick(t, c, dst); ep.Identity != "db.demo" {
			t.Fatalf("after the control plane left: %+v", ep)
		}
	}
}

func TestClientEvictsIdleLookups(t *testing.T) {
	f, addr, stop := startFake(t)
	defer stop()
	c := newClient(t, addr, 200*time.Millisecond)
	f.ch("10.4.0.1:80") <- addUpdate("", "10.4.0.1:80")
	pick(t, c, Destination{Addr: netip.MustParseAddrPort("10.4.0.1:80")})
	if n := f.openStreams("10.4.0.1:80"); n != 1 {
		t.Fatalf("%d open streams, want 1", n)
	}
	testkit.EventuallyTrue(t, 10*time.Second, "the idle lookup to be dropped", func() bool {
		return f.openStreams("10.4.0.1:80") == 0
	})
}

// TestClientSnapshotReplacesAfterReconnect: endpoints removed while the
// stream was down are gone once a new stream's first update (the whole
// state) arrives.
func TestClientSnapshotReplacesAfterReconnect(t *testing.T) {
	f, addr, stop := startFake(t)
	defer stop()
	c := newClient(t, addr, time.Minute)
	const id = "web.demo.serviceaccount.identity.linkerd.cluster.local"
	dst := Destination{Authority: "web.demo.svc.cluster.local:8080"}
	ch := f.ch("web.demo.svc.cluster.local:8080")
	ch <- addUpdate(id, "10.1.0.1:8080", "10.1.0.2:8080", "10.1.0.3:8080")
	pick(t, c, dst) // subscribes
	endpoints := func() []string {
		c.mu.Lock()
		sub := c.subs["web.demo.svc.cluster.local:8080"]
		c.mu.Unlock()
		sub.mu.Lock()
		defer sub.mu.Unlock()
		var addrs []string
		for a := range sub.endpoints {
			addrs = append(addrs, a.String())
		}
		slices.Sort(addrs)
		return addrs
	}
	waitFor := func(want string) {
		t.Helper()
		testkit.Eventually(t, 5*time.Second, func() error {
			if got := strings.Join(endpoints(), ","); got != want {
				return fmt.Errorf("endpoints %s, want %s", got, want)
			}
			return nil
		})
	}
	waitFor("10.1.0.1:8080,10.1.0.2:8080,10.1.0.3:8080")
	ch <- nil // the stream ends; the next one starts with the state without 10.1.0.3
	ch <- addUpdate(id, "10.1.0.1:8080", "10.1.0.2:8080")
	waitFor("10.1.0.1:8080,10.1.0.2:8080")
}

// TestClientBalancerAlgorithm: the algorithm an endpoint set names reaches
// the destination's balancer; an unknown or absent one is the default.
func TestClientBalancerAlgorithm(t *testing.T) {
	f, addr, stop := startFake(t)
	defer stop()
	c := newClient(t, addr, time.Minute)
	const key = "web.demo.svc.cluster.local:8080"
	dst := Destination{Authority: key, Addr: netip.MustParseAddrPort("10.96.0.10:8080")}
	for _, tt := range []struct {
		balancer string
		want     balance.Algorithm
	}{
		{"round-robin", balance.RoundRobin},
		{"least-request", balance.LeastRequest},
		{"fastest", balance.PeakEWMA},
		{"round-robin", balance.RoundRobin},
		{"", balance.PeakEWMA},
	} {
		u := addUpdate("", "10.1.0.5:8080", "10.1.0.6:8080")
		u.GetAdd().Balancer = tt.balancer
		f.ch(key) <- u
		testkit.Eventually(t, 10*time.Second, func() error {
			bal, err := c.Resolve(context.Background(), dst)
			if err != nil {
				return err
			}
			p2c, ok := bal.(*balance.P2C)
			if !ok {
				return fmt.Errorf("balancer %T, want *balance.P2C", bal)
			}
			if got := p2c.Algorithm(); got != tt.want {
				return fmt.Errorf("balancer %q: algorithm %v, want %v", tt.balancer, got, tt.want)
			}
			return nil
		})
	}
}
