package tap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd/internal/testkit"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/meshtls"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	proxytap "github.com/linkerd-go/linkerd/proxy/tap"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

const tapID = "tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"

// source is a fixed mesh TLS identity.
type source struct {
	name  string
	cert  tls.Certificate
	roots *x509.CertPool
}

func (s *source) Name() string                  { return s.name }
func (s *source) Certificate() *tls.Certificate { return &s.cert }
func (s *source) Roots() *x509.CertPool         { return s.roots }

// fakePods resolves every resource to its pods, or fails.
type fakePods struct {
	pods []PodTarget
	err  error
}

func (f fakePods) Resolve(context.Context, string, string, string) ([]PodTarget, error) {
	return f.pods, f.err
}

// proxyTap is a proxy's tap API serving the tap identity only, and a chain
// with its tap layer to send requests through.
type proxyTap struct {
	hub   *proxytap.Hub
	chain *pipeline.Chain
}

func startProxyTap(t *testing.T, ca *testkit.MeshCA, identity string, dst *balance.Endpoint) (*proxyTap, string) {
	t.Helper()
	reg := metrics.NewRegistry()
	hub := proxytap.NewHub(reg)
	srv := &proxytap.Server{Hub: hub, Identity: tapID, Metrics: reg, Logger: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	src := &source{name: identity, cert: ca.Leaf(t, identity, time.Hour), roots: ca.Pool()}
	go func() { done <- srv.Serve(ctx, ln, meshtls.New(src).Server()) }()
	t.Cleanup(func() { cancel(); <-done })
	return &proxyTap{hub: hub, chain: pipeline.NewChain(endpoint{dst}, &proxytap.Layer{Hub: hub, Direction: transport.Outbound})}, ln.Addr().String()
}

type endpoint struct{ ep *balance.Endpoint }

func (e endpoint) Serve(ctx context.Context, x *pipeline.Exchange) error {
	x.Endpoint = e.ep
	return x.Next(ctx)
}

type answer struct{}

func (answer) Forward(_ context.Context, x *pipeline.Exchange) error {
	x.Responded(200)
	return nil
}

// send passes one gRPC request through the proxy's chain, ending with
// grpcStatus.
func (p *proxyTap) send(t *testing.T, path string, grpcStatus int32) {
	t.Helper()
	var x pipeline.Exchange
	x.Reset(&pipeline.Conn{Client: netip.MustParseAddrPort("10.0.0.1:40000")}, pipeline.HTTP2, time.Now())
	x.Method, x.Authority, x.Path = "POST", "voting.demo:8080", path
	if err := p.chain.Serve(context.Background(), &x, answer{}); err != nil {
		t.Fatal(err)
	}
	x.GRPCStatus = grpcStatus
	x.Finish(nil)
}

func ep(deploy string) *balance.Endpoint {
	return &balance.Endpoint{Addr: netip.MustParseAddrPort("10.0.0.9:8080"), Identity: deploy + ".demo.serviceaccount.identity.linkerd.cluster.local",
		Labels: metrics.Labels{{Name: "dst_namespace", Value: "demo"}, {Name: "dst_deployment", Value: deploy}}}
}

// TestServerTapByResource taps two pods' proxies through the tap service
// over mTLS with the tap identity: the events of both come back, labelled
// by pod; --to keeps those to voting; a resolver's error is the call's.
func TestServerTapByResource(t *testing.T) {
	ca := testkit.NewMeshCA(t, time.Hour)
	webID := "web.demo.serviceaccount.identity.linkerd.cluster.local"
	web1, addr1 := startProxyTap(t, ca, webID, ep("voting"))
	web2, addr2 := startProxyTap(t, ca, webID, ep("items"))
	tapCert := ca.Leaf(t, tapID, time.Hour)
	srv := &Server{
		Pods: fakePods{pods: []PodTarget{
			{Namespace: "demo", Name: "web-1", Addr: addr1, Identity: webID},
			{Namespace: "demo", Name: "web-2", Addr: addr2, Identity: webID},
		}},
		TLS: func(serverName string) *tls.Config {
			return &tls.Config{MinVersion: tls.VersionTLS13, ServerName: serverName, RootCAs: ca.Pool(), Certificates: []tls.Certificate{tapCert}}
		},
		Log: slog.New(slog.DiscardHandler),
	}
	client := serve(t, srv)

	tapAll := func(t *testing.T, req *vizv1.TapByResourceRequest, want int) []*vizv1.TapByResourceEvent {
		t.Helper()
		// The previous subtest's taps are gone first.
		testkit.EventuallyTrue(t, 5*time.Second, "no taps attached", func() bool {
			return web1.hub.Attached() == 0 && web2.hub.Attached() == 0
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := client.TapByResource(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Header(); err != nil {
			t.Fatal(err)
		}
		// Wait for both proxies' taps, then send a request through each.
		testkit.EventuallyTrue(t, 5*time.Second, "both taps attached", func() bool {
			return web1.hub.Attached() > 0 && web2.hub.Attached() > 0
		})
		web1.send(t, "/linkerdgo.demo.v1.Voting/Vote", 2)
		web2.send(t, "/linkerdgo.demo.v1.Items/List", 0)
		var evs []*vizv1.TapByResourceEvent
		for len(evs) < want {
			ev, err := stream.Recv()
			if err != nil {
				t.Fatalf("after %d events: %v", len(evs), err)
			}
			evs = append(evs, ev)
		}
		return evs
	}
	summary := func(evs []*vizv1.TapByResourceEvent) []string {
		var s []string
		for _, ev := range evs {
			e := ev.GetEvent()
			switch {
			case e.GetRequestInit() != nil:
				s = append(s, fmt.Sprintf("%s/%s req %s", ev.Namespace, ev.Pod, e.GetRequestInit().GetPath()))
			case e.GetResponseEnd() != nil:
				s = append(s, fmt.Sprintf("%s/%s end %d %s", ev.Namespace, ev.Pod, e.GetResponseEnd().GetGrpcStatus(), e.GetDestinationMeta()["deployment"]))
			}
		}
		sort.Strings(s)
		return s
	}

	t.Run("all pods", func(t *testing.T) {
		got := summary(tapAll(t, &vizv1.TapByResourceRequest{Target: &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "web"}}, 6))
		want := []string{"demo/web-1 end 2 voting", "demo/web-1 req /linkerdgo.demo.v1.Voting/Vote", "demo/web-2 end 0 items", "demo/web-2 req /linkerdgo.demo.v1.Items/List"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
	t.Run("to voting", func(t *testing.T) {
		evs := tapAll(t, &vizv1.TapByResourceRequest{
			Target: &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "web"},
			To:     &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "voting"},
		}, 3)
		for _, ev := range evs {
			if ev.Pod != "web-1" || ev.GetEvent().GetDestinationMeta()["deployment"] != "voting" {
				t.Errorf("--to voting passed an event of %s to %v", ev.Pod, ev.GetEvent().GetDestinationMeta())
			}
		}
	})
	t.Run("resolver error", func(t *testing.T) {
		bad := serve(t, &Server{Pods: fakePods{err: status.Error(codes.FailedPrecondition, "no pods to tap for deployment/web: tap not enabled")}})
		stream, err := bad.TapByResource(context.Background(), &vizv1.TapByResourceRequest{Target: &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "web"}})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.FailedPrecondition || status.Convert(err).Message() != "no pods to tap for deployment/web: tap not enabled" {
			t.Errorf("got %v", err)
		}
	})
	t.Run("no target", func(t *testing.T) {
		stream, err := client.TapByResource(context.Background(), &vizv1.TapByResourceRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("got %v, want InvalidArgument", err)
		}
	})
}

// serve runs srv on a loopback port and returns a client of it.
func serve(t *testing.T, srv *Server) vizv1.TapServiceClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	vizv1.RegisterTapServiceServer(gs, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(ln)
	}()
	t.Cleanup(func() { gs.Stop(); <-done })
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return vizv1.NewTapServiceClient(conn)
}
