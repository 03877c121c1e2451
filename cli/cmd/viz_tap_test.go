package cmd

import (
	"testing"

	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
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
