package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

// fakeTap is a tap service: it answers every TapByResource with err, or
// with its events, then (with hold) waits for the client to go away, else
// ends the stream. It records the requests and when their streams ended.
type fakeTap struct {
	vizv1.UnimplementedTapServiceServer
	err    error
	events []*vizv1.TapByResourceEvent
	// repeat sends the events again every interval until the client goes.
	repeat time.Duration
	hold   bool

	mu       sync.Mutex
	requests []*vizv1.TapByResourceRequest
	ended    chan struct{} // one send per finished stream
}

func (f *fakeTap) TapByResource(req *vizv1.TapByResourceRequest, stream grpc.ServerStreamingServer[vizv1.TapByResourceEvent]) error {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	defer func() {
		select {
		case f.ended <- struct{}{}:
		default:
		}
	}()
	if f.err != nil {
		return f.err
	}
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	for {
		for _, ev := range f.events {
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
		if f.repeat == 0 {
			break
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-time.After(f.repeat):
		}
	}
	if f.hold {
		<-stream.Context().Done()
	}
	return nil
}

func (f *fakeTap) lastRequest() *vizv1.TapByResourceRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return nil
	}
	return f.requests[len(f.requests)-1]
}

// serveTap serves f over gRPC on the loopback and returns a client of it.
func serveTap(t *testing.T, f *fakeTap) vizv1.TapServiceClient {
	t.Helper()
	if f.ended == nil {
		f.ended = make(chan struct{}, 64)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	vizv1.RegisterTapServiceServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return vizv1.NewTapServiceClient(conn)
}

// call returns the three events of one request a pod's proxy saw.
func tapCall(pod, direction string, id uint64, method, path string, httpStatus uint32, grpcStatus int32, us int64, dstMeta map[string]string) []*vizv1.TapByResourceEvent {
	base := &tapv1.TapEvent{Direction: direction, Source: "10.0.0.1:40000", Destination: "10.0.0.2:8080", Tls: "true",
		ClientId: "web.demo.serviceaccount.identity.linkerd.cluster.local", ServerId: "voting.demo.serviceaccount.identity.linkerd.cluster.local",
		DestinationMeta: dstMeta}
	with := func(set func(*tapv1.TapEvent)) *vizv1.TapByResourceEvent {
		e := proto.Clone(base).(*tapv1.TapEvent)
		set(e)
		return &vizv1.TapByResourceEvent{Namespace: "demo", Pod: pod, Event: e}
	}
	return []*vizv1.TapByResourceEvent{
		with(func(e *tapv1.TapEvent) {
			e.Event = &tapv1.TapEvent_RequestInit{RequestInit: &tapv1.RequestInit{Id: id, Method: method, Scheme: "http", Authority: "voting.demo.svc.cluster.local:8080", Path: path}}
		}),
		with(func(e *tapv1.TapEvent) {
			e.Event = &tapv1.TapEvent_ResponseInit{ResponseInit: &tapv1.ResponseInit{Id: id, SinceRequestInitUs: us / 2, HttpStatus: httpStatus}}
		}),
		with(func(e *tapv1.TapEvent) {
			e.Event = &tapv1.TapEvent_ResponseEnd{ResponseEnd: &tapv1.ResponseEnd{Id: id, SinceRequestInitUs: us, GrpcStatus: grpcStatus}}
		}),
	}
}

// demoTapEvents are web's calls as the demo makes them: one vote for the
// broken choice failing with gRPC Unknown, one that succeeds, and an
// inbound request from the bot.
func demoTapEvents() []*vizv1.TapByResourceEvent {
	voting := map[string]string{"namespace": "demo", "deployment": "voting", "service": "voting"}
	var evs []*vizv1.TapByResourceEvent
	evs = append(evs, tapCall("web", "outbound", 1, "POST", "/linkerdgo.demo.v1.Voting/Vote", 200, 2, 1500, voting)...)
	evs = append(evs, tapCall("web", "outbound", 2, "POST", "/linkerdgo.demo.v1.Voting/Vote", 200, 0, 900, voting)...)
	inbound := tapCall("web", "inbound", 1, "GET", "/api/vote", 500, -1, 2500, nil)
	for _, e := range inbound {
		e.Event.ClientId, e.Event.ServerId = "bot.demo.serviceaccount.identity.linkerd.cluster.local", "web.demo.serviceaccount.identity.linkerd.cluster.local"
	}
	return append(evs, inbound...)
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name, data string
}

// readSSE reads the events of an event stream until it ends, or until
// stop returns true for the events so far.
func readSSE(t *testing.T, body io.Reader, stop func([]sseEvent) bool) []sseEvent {
	t.Helper()
	var evs []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" || cur.data != "" {
				evs = append(evs, cur)
				if stop != nil && stop(evs) {
					return evs
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data += strings.TrimPrefix(line, "data: ")
		}
	}
	return evs
}

func calls(t *testing.T, evs []sseEvent) []Call {
	t.Helper()
	var cs []Call
	for _, e := range evs {
		if e.name != "call" {
			continue
		}
		var c Call
		if err := json.Unmarshal([]byte(e.data), &c); err != nil {
			t.Fatalf("call event %q: %v", e.data, err)
		}
		cs = append(cs, c)
	}
	return cs
}

func tapServer(t *testing.T, f *fakeTap) *httptest.Server {
	t.Helper()
	cfg := Config{Metrics: &fakeMetrics{}, Assets: testAssets}
	if f != nil {
		cfg.Tap = serveTap(t, f)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// The calls' events are joined into one call each and relayed, with the
// request's target and filters passed to the tap service.
func TestTapRelaysCalls(t *testing.T) {
	f := &fakeTap{events: demoTapEvents()}
	srv := tapServer(t, f)
	resp, err := http.Get(srv.URL + "/api/namespaces/demo/tap?resource=deployment/web&to=deployment/voting&maxRps=20&path=/linkerdgo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	evs := readSSE(t, resp.Body, nil)
	got := calls(t, evs)
	if len(got) != 3 {
		t.Fatalf("got %d calls, want 3: %+v", len(got), evs)
	}
	doughnut, bagel, inbound := got[0], got[1], got[2]
	if doughnut.Path != "/linkerdgo.demo.v1.Voting/Vote" || doughnut.Direction != "outbound" || doughnut.Method != "POST" ||
		doughnut.HTTPStatus != 200 || doughnut.GRPCStatus == nil || *doughnut.GRPCStatus != 2 || doughnut.GRPCStatusName != "Unknown" ||
		!doughnut.Failed || doughnut.LatencyMs != 1.5 || doughnut.DstResource != "deployment/voting" || doughnut.Pod != "web" ||
		doughnut.ServerID != "voting.demo.serviceaccount.identity.linkerd.cluster.local" {
		t.Errorf("the failing vote: %+v", doughnut)
	}
	if bagel.Failed || bagel.GRPCStatusName != "OK" {
		t.Errorf("the good vote: %+v", bagel)
	}
	if inbound.Direction != "inbound" || inbound.HTTPStatus != 500 || inbound.GRPCStatus != nil || !inbound.Failed {
		t.Errorf("the inbound call: %+v", inbound)
	}
	if last := evs[len(evs)-1]; last.name != "end" || !strings.Contains(last.data, "the tap ended") {
		t.Errorf("last event %+v, want the end", last)
	}
	want := &vizv1.TapByResourceRequest{
		Target: &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "web"},
		To:     &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "voting"},
		Match:  &tapv1.Match{PathPrefix: "/linkerdgo"},
		MaxRps: 20,
	}
	if req := f.lastRequest(); !proto.Equal(req, want) {
		t.Errorf("tap request %v, want %v", req, want)
	}
}

// More calls than the rate allows are dropped and counted; the default
// rate (more than these calls) is asked of the tap service.
func TestTapRateLimit(t *testing.T) {
	var evs []*vizv1.TapByResourceEvent
	for i := range 10 {
		evs = append(evs, tapCall("web", "outbound", uint64(i+1), "GET", "/", 200, -1, 100, nil)...)
	}
	f := &fakeTap{events: evs}
	srv := tapServer(t, f)
	for _, tt := range []struct {
		query    string
		calls    int
		wantRate uint32
	}{
		{"&maxRps=3", 3, 3},
		{"", 10, DefaultTapRPS},
	} {
		resp, err := http.Get(srv.URL + "/api/namespaces/demo/tap?resource=pod/web" + tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got := readSSE(t, resp.Body, nil)
		resp.Body.Close()
		if n := len(calls(t, got)); n != tt.calls {
			t.Errorf("%q: %d calls relayed, want %d", tt.query, n, tt.calls)
		}
		var end tapEnd
		if last := got[len(got)-1]; last.name != "end" || json.Unmarshal([]byte(last.data), &end) != nil || end.Dropped != 10-tt.calls {
			t.Errorf("%q: last event %+v, want the end with %d dropped", tt.query, last, 10-tt.calls)
		}
		if r := f.lastRequest().GetMaxRps(); r != tt.wantRate {
			t.Errorf("%q: asked the tap service for %d rps, want %d", tt.query, r, tt.wantRate)
		}
	}
}

// A stream ends after its duration, ending the upstream tap.
func TestTapDuration(t *testing.T) {
	f := &fakeTap{hold: true}
	srv := tapServer(t, f)
	start := time.Now()
	resp, err := http.Get(srv.URL + "/api/namespaces/demo/tap?resource=deployment/web&duration=1s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	evs := readSSE(t, resp.Body, nil)
	if len(evs) != 1 || evs[0].name != "end" || !strings.Contains(evs[0].data, "stop after 1s") {
		t.Errorf("events %+v, want the end after 1s", evs)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("the stream ended after %v, before its duration", d)
	}
	select {
	case <-f.ended:
	case <-time.After(10 * time.Second):
		t.Error("the upstream tap did not end with the stream")
	}
}

// When the browser goes away, the upstream tap ends.
func TestTapClientGone(t *testing.T) {
	f := &fakeTap{events: demoTapEvents(), repeat: 50 * time.Millisecond}
	srv := tapServer(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/namespaces/demo/tap?resource=deployment/web", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	evs := readSSE(t, resp.Body, func(evs []sseEvent) bool { return len(evs) > 0 })
	if len(calls(t, evs)) != 1 {
		t.Fatalf("events %+v, want a call", evs)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-f.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream tap goes on after the browser went away")
	}
}

// Bad requests, and the tap service's refusals, are one-line errors with
// their HTTP status, before any event.
func TestTapErrors(t *testing.T) {
	tests := []struct {
		name   string
		tapErr error
		noTap  bool
		query  string
		code   int
		want   string
	}{
		{name: "no resource", query: "", code: 400, want: `invalid resource ""`},
		{name: "unknown kind", query: "resource=service/web", code: 400, want: "KIND one of namespace, deployment"},
		{name: "bad to", query: "resource=deployment/web&to=voting", code: 400, want: `invalid to "voting"`},
		{name: "bad rate", query: "resource=deployment/web&maxRps=1000", code: 400, want: "invalid maxRps"},
		{name: "bad duration", query: "resource=deployment/web&duration=1h", code: 400, want: "invalid duration"},
		{name: "not found", tapErr: status.Error(codes.NotFound, "deployment nope not found in namespace demo"), query: "resource=deployment/nope", code: 404, want: "tap: deployment nope not found in namespace demo"},
		{name: "not enabled", tapErr: status.Error(codes.FailedPrecondition, "no pods to tap for deployment/web: tap not enabled"), query: "resource=deployment/web", code: 409, want: "tap not enabled"},
		{name: "tap down", tapErr: status.Error(codes.Unavailable, "connection refused"), query: "resource=deployment/web", code: 502, want: "connection refused"},
		{name: "no tap service", noTap: true, query: "resource=deployment/web", code: 503, want: "-tap-addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fakeTap
			if !tt.noTap {
				f = &fakeTap{err: tt.tapErr}
			}
			srv := tapServer(t, f)
			resp, err := http.Get(srv.URL + "/api/namespaces/demo/tap?" + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Error string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.code || !strings.Contains(body.Error, tt.want) || strings.Contains(body.Error, "\n") {
				t.Errorf("%d %q, want %d with %q", resp.StatusCode, body.Error, tt.code, tt.want)
			}
		})
	}
}

// At most MaxTapStreams streams run at once.
func TestTapStreamLimit(t *testing.T) {
	f := &fakeTap{hold: true}
	srv := tapServer(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() *http.Response {
		req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/namespaces/demo/tap?"+url.Values{"resource": {"deployment/web"}}.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i := range MaxTapStreams {
		resp := open()
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
	}
	resp := open()
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), fmt.Sprintf("at most %d", MaxTapStreams)) {
		t.Errorf("one stream too many: %d %s", resp.StatusCode, body)
	}
}
