package route

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/discovery"
)

// fakeDst streams the profiles sent on its channel.
type fakeDst struct {
	destinationv1.UnimplementedDestinationServer
	profiles chan *destinationv1.Profile
}

func (f *fakeDst) GetProfile(_ *destinationv1.GetRequest, s grpc.ServerStreamingServer[destinationv1.Profile]) error {
	for {
		select {
		case p := <-f.profiles:
			if err := s.Send(p); err != nil {
				return err
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

func TestClientKeepsLastGoodProfile(t *testing.T) {
	f := &fakeDst{profiles: make(chan *destinationv1.Profile, 10)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	destinationv1.RegisterDestinationServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := NewClient(conn, ClientOptions{InitialTimeout: 5 * time.Second,
		Key: func(d discovery.Destination) (string, bool) { return d.Authority, true }})
	t.Cleanup(c.Close)

	good := &destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local",
		Routes: []*destinationv1.Route{{Name: "good", Condition: rm("GET", "/a")}}}
	f.profiles <- good
	ctx := context.Background()
	dst := discovery.Destination{Authority: "web.ns.svc.cluster.local:8080"}
	p := c.Profile(ctx, dst)
	if p == nil || p.Dst != "web.ns.svc.cluster.local:8080" || p.Match("GET", "/a") == nil {
		t.Fatalf("first profile %+v, want route good with dst web.ns.svc.cluster.local:8080", p)
	}
	// A profile that does not compile is ignored, then a later good one
	// replaces the first.
	f.profiles <- &destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local",
		Routes: []*destinationv1.Route{{Name: "bad", Condition: rm("GET", "/([")}}}
	f.profiles <- &destinationv1.Profile{FullyQualifiedName: "web.ns.svc.cluster.local",
		Routes: []*destinationv1.Route{{Name: "second", Condition: rm("GET", "/b")}}}
	deadline := time.Now().Add(5 * time.Second)
	var names []string
	for time.Now().Before(deadline) {
		p := c.Profile(ctx, dst)
		if p == nil || len(p.Routes) != 1 {
			t.Fatalf("profile %+v: want one route at every moment", p)
		}
		if n := p.Routes[0].Name; len(names) == 0 || names[len(names)-1] != n {
			names = append(names, n)
		}
		if names[len(names)-1] == "second" {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for _, n := range names {
		if n == "bad" {
			t.Fatalf("the bad profile was installed: %v", names)
		}
	}
	if names[len(names)-1] != "second" {
		t.Fatalf("profiles seen %v, want the last to be second", names)
	}
	// A profile with only a split (a TrafficSplit without a ServiceProfile)
	// is a profile.
	f.profiles <- &destinationv1.Profile{DstOverrides: []*destinationv1.WeightedDst{{Authority: "web-v2.ns.svc.cluster.local", WeightMilli: 1000}}}
	for time.Now().Before(deadline) {
		if p := c.Profile(ctx, dst); p != nil && len(p.Routes) == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if p := c.Profile(ctx, dst); p == nil || p.Split(dst.Authority, 0) != "web-v2.ns.svc.cluster.local:8080" {
		t.Fatalf("split-only profile %+v, want its override", p)
	}
	// An empty profile removes it.
	f.profiles <- &destinationv1.Profile{}
	for time.Now().Before(deadline) && c.Profile(ctx, dst) != nil {
		time.Sleep(time.Millisecond)
	}
	if c.Profile(ctx, dst) != nil {
		t.Fatal("the profile stayed after the destination dropped it")
	}
}
