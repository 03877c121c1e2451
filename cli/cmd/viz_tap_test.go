package cmd

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/tap"
)

func TestTapLine(t *testing.T) {
	ev := func(e any, wide bool) (tap.Event, bool) {
		te := tapv1.TapEvent{Direction: "inbound", Source: "10.0.0.1:4000", Destination: "10.0.0.2:8080", Tls: "true",
			DestinationMeta: map[string]string{"deployment": "voting"}}
		switch v := e.(type) {
		case *tapv1.RequestInit:
			te.Event = &tapv1.TapEvent_RequestInit{RequestInit: v}
		case *tapv1.ResponseInit:
			te.Event = &tapv1.TapEvent_ResponseInit{ResponseInit: v}
		case *tapv1.ResponseEnd:
			te.Event = &tapv1.TapEvent_ResponseEnd{ResponseEnd: v}
		}
		return tap.Event{Namespace: "demo", Pod: "voting", TapEvent: &te}, wide
	}
	for _, tc := range []struct {
		event any
		wide  bool
		want  string
	}{
		{&tapv1.RequestInit{Id: 7, Method: "POST", Authority: "voting.demo:8080", Path: "/pkg.Svc/Vote"}, false,
			"req id=7 proxy=in  src=10.0.0.1:4000 dst=10.0.0.2:8080 tls=true :method=POST :authority=voting.demo:8080 :path=/pkg.Svc/Vote"},
		{&tapv1.ResponseInit{Id: 7, SinceRequestInitUs: 812, HttpStatus: 200}, false,
			"rsp id=7 proxy=in  src=10.0.0.1:4000 dst=10.0.0.2:8080 tls=true :status=200 latency=812µs"},
		{&tapv1.ResponseEnd{Id: 7, SinceRequestInitUs: 950, GrpcStatus: 2}, false,
			"end id=7 proxy=in  src=10.0.0.1:4000 dst=10.0.0.2:8080 tls=true grpc-status=Unknown duration=950µs"},
		{&tapv1.ResponseEnd{Id: 8, SinceRequestInitUs: 30, GrpcStatus: -1, Error: "connection refused", ProxyError: true}, true,
			`end id=8 proxy=in  src=10.0.0.1:4000 dst=10.0.0.2:8080 tls=true pod=demo/voting dst_deployment=voting duration=30µs error="connection refused"`},
	} {
		e, wide := ev(tc.event, tc.wide)
		if got := tapLine(e, wide); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

// fakeTapService is a tap service streaming fixed events, or failing.
type fakeTapService struct {
	vizv1.UnimplementedTapServiceServer
	events []*vizv1.TapByResourceEvent
	err    error
	got    chan *vizv1.TapByResourceRequest
}

func (f *fakeTapService) TapByResource(req *vizv1.TapByResourceRequest, stream grpc.ServerStreamingServer[vizv1.TapByResourceEvent]) error {
	f.got <- req
	for _, ev := range f.events {
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	return f.err
}

// TestTapService checks the Kubernetes path's client: the request as the
// service gets it, its events rendered as on the local mesh, its error as
// one line.
func TestTapService(t *testing.T) {
	end := &tapv1.TapEvent{Direction: "outbound", Source: "10.0.0.1:4000", Destination: "10.0.0.2:8080", Tls: "true",
		Event: &tapv1.TapEvent_ResponseEnd{ResponseEnd: &tapv1.ResponseEnd{Id: 3, SinceRequestInitUs: 950, GrpcStatus: 2}}}
	tests := []struct {
		name    string
		svc     *fakeTapService
		want    string
		wantErr string
	}{
		{name: "events", svc: &fakeTapService{events: []*vizv1.TapByResourceEvent{{Namespace: "demo", Pod: "web-1", Event: end}}},
			want: "end id=3 proxy=out src=10.0.0.1:4000 dst=10.0.0.2:8080 tls=true grpc-status=Unknown duration=950µs\n"},
		{name: "tap not enabled", svc: &fakeTapService{err: status.Error(codes.FailedPrecondition, "no pods to tap for deployment/web: tap not enabled on web-1")},
			wantErr: "no pods to tap for deployment/web: tap not enabled on web-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.svc.got = make(chan *vizv1.TapByResourceRequest, 1)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			gs := grpc.NewServer()
			vizv1.RegisterTapServiceServer(gs, tt.svc)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = gs.Serve(ln)
			}()
			t.Cleanup(func() { gs.Stop(); <-done })
			req := &vizv1.TapByResourceRequest{Target: &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "web"},
				To: &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "voting"}, Match: &tapv1.Match{Method: "POST"}, MaxRps: 7}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			events, errs := tapService(ctx, ln.Addr().String(), req)
			var out bytes.Buffer
			err = printTap(&out, events, errs, "")
			if got := <-tt.svc.got; !proto.Equal(got, req) {
				t.Errorf("the service got %v, want %v", got, req)
			}
			if out.String() != tt.want {
				t.Errorf("output %q, want %q", out.String(), tt.want)
			}
			if (err == nil) != (tt.wantErr == "") || err != nil && err.Error() != tt.wantErr {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
