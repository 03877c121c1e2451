package authz

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// fakeController sends its messages on each Watch, then ends the stream
// when told to.
type fakeController struct {
	policyv1.UnimplementedInboundPolicyServer
	msgs    chan *policyv1.WorkloadPolicy
	end     chan struct{}
	watched chan string
}

func (f *fakeController) Watch(req *policyv1.WatchRequest, stream policyv1.InboundPolicy_WatchServer) error {
	f.watched <- req.GetWorkload()
	for {
		select {
		case m := <-f.msgs:
			if err := stream.Send(m); err != nil {
				return err
			}
		case <-f.end:
			return nil
		case <-stream.Context().Done():
			return nil
		}
	}
}

// TestClient: before the first answer the default applies; an answer
// replaces it; a malformed one is ignored; when the controller goes away
// the last policy stays, and the client subscribes again.
func TestClient(t *testing.T) {
	f := &fakeController{msgs: make(chan *policyv1.WorkloadPolicy), end: make(chan struct{}), watched: make(chan string, 4)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	policyv1.RegisterInboundPolicyServer(gs, f)
	go func() { _ = gs.Serve(lis) }() // stopped below
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	pols, err := NewPolicies("all-unauthenticated", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := netip.MustParseAddrPort("10.0.0.2:8080")
	client := netip.MustParseAddrPort("10.0.0.9:4000")
	plain := transport.NoIdentity("no_tls_from_remote")
	if !pols.AuthorizeTCP(target, client, plain) {
		t.Fatal("before the first answer: the default should allow")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	c := &Client{Conn: conn, Workload: `{"ns":"test","pod":"server"}`, Policies: pols, Logger: slog.New(slog.DiscardHandler), Backoff: 10 * time.Millisecond}
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if w := <-f.watched; w != `{"ns":"test","pod":"server"}` {
		t.Errorf("workload %q", w)
	}
	f.msgs <- inboundpolicy.ToProto(inboundpolicy.Default("deny", nil), nil)
	waitFor(t, "deny in force", func() bool { return !pols.AuthorizeTCP(target, client, plain) })

	bad := inboundpolicy.ToProto(inboundpolicy.Default("all-unauthenticated", nil), nil)
	bad.Default.Authorizations[0].Networks[0].Cidr = "not-a-cidr"
	f.msgs <- bad
	f.msgs <- inboundpolicy.ToProto(inboundpolicy.Default("deny", nil), nil) // sent after: the bad one was processed
	if pols.AuthorizeTCP(target, client, plain) {
		t.Fatal("a malformed policy replaced the last good one")
	}

	close(f.end) // the controller goes away
	if w := <-f.watched; w == "" {
		t.Error("no second subscription")
	}
	if pols.AuthorizeTCP(target, client, plain) {
		t.Error("the last policy was dropped when the stream ended")
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
