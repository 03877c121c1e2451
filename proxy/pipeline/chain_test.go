package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// recorder is a layer that records when it runs and ends.
type recorder struct {
	name string
	log  *[]string
	fail error // returned instead of calling Next
}

func (r *recorder) Serve(ctx context.Context, x *Exchange) error {
	*r.log = append(*r.log, "serve "+r.name)
	if r.fail != nil {
		return r.fail
	}
	err := x.Next(ctx)
	*r.log = append(*r.log, "after "+r.name)
	return err
}

func (r *recorder) End(*Exchange) { *r.log = append(*r.log, "end "+r.name) }

// terminal is a Forwarder that answers with a status.
type terminal struct {
	status int
	err    error
	calls  int
}

func (t *terminal) Forward(_ context.Context, x *Exchange) error {
	t.calls++
	if t.err != nil {
		return t.err
	}
	x.Responded(t.status)
	return nil
}

func TestChainOrder(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		failAt   string
		termErr  error
		want     []string
		wantErr  error
		wantTerm int
	}{
		{
			name:     "all layers, then the terminal; ends in reverse",
			want:     []string{"serve a", "serve b", "serve c", "after c", "after b", "after a", "end c", "end b", "end a"},
			wantTerm: 1,
		},
		{
			name:    "a layer that fails stops the chain; only the reached layers end",
			failAt:  "b",
			want:    []string{"serve a", "serve b", "after a", "end b", "end a"},
			wantErr: boom,
		},
		{
			name:     "the terminal's error goes back up",
			termErr:  boom,
			want:     []string{"serve a", "serve b", "serve c", "after c", "after b", "after a", "end c", "end b", "end a"},
			wantErr:  boom,
			wantTerm: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log []string
			var layers []Layer
			for _, n := range []string{"a", "b", "c"} {
				r := &recorder{name: n, log: &log}
				if n == tc.failAt {
					r.fail = boom
				}
				layers = append(layers, r)
			}
			term := &terminal{status: 200, err: tc.termErr}
			var x Exchange
			x.Reset(&Conn{}, HTTP1, time.Now())
			err := NewChain(layers...).Serve(context.Background(), &x, term)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			x.Finish(nil)
			x.Finish(nil) // once only
			if !reflect.DeepEqual(log, tc.want) {
				t.Errorf("ran\n%q\nwant\n%q", log, tc.want)
			}
			if term.calls != tc.wantTerm {
				t.Errorf("terminal called %d times, want %d", term.calls, tc.wantTerm)
			}
		})
	}
}

func TestFailAnswers(t *testing.T) {
	t.Parallel()
	ep := &balance.Endpoint{Addr: netip.MustParseAddrPort("10.0.0.1:80")}
	for _, tc := range []struct {
		name       string
		grpc       bool
		ep         *balance.Endpoint
		err        error
		wantStatus int
		wantGRPC   string
		wantKey    metrics.ResponseKey
	}{
		{"no endpoint", false, nil, errors.New("no endpoints"), 503, "", metrics.ResponseKey{Status: 503, GRPCStatus: -1, Failure: true, Error: "unexpected"}},
		{"endpoint failed", false, ep, errors.New("connection refused"), 502, "", metrics.ResponseKey{Status: 502, GRPCStatus: -1, Failure: true, Error: "unexpected"}},
		{"timeout", false, ep, context.DeadlineExceeded, 504, "", metrics.ResponseKey{Status: 504, GRPCStatus: -1, Failure: true, Error: transport.ErrorReason(context.DeadlineExceeded)}},
		{"status error", false, ep, &StatusError{Status: 400, Err: errors.New("malformed")}, 400, "", metrics.ResponseKey{Status: 400, GRPCStatus: -1, Failure: true, Error: "unexpected"}},
		{"gRPC: trailers-only UNAVAILABLE", true, ep, errors.New("connection refused"), 200, "14", metrics.ResponseKey{Status: 200, GRPCStatus: 14, Failure: true, Error: "unexpected"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var x Exchange
			x.Reset(&Conn{}, HTTP2, time.Now())
			x.GRPC, x.Endpoint = tc.grpc, tc.ep
			a := x.Fail(0, tc.err)
			if a.Status != tc.wantStatus {
				t.Errorf("status %d, want %d", a.Status, tc.wantStatus)
			}
			got := map[string]string{}
			for _, f := range a.Fields {
				got[f.Name] = f.Value
			}
			if got[HeaderProxyError] == "" {
				t.Errorf("no %s field: %v", HeaderProxyError, a.Fields)
			}
			if got["grpc-status"] != tc.wantGRPC {
				t.Errorf("grpc-status %q, want %q", got["grpc-status"], tc.wantGRPC)
			}
			if tc.grpc != (a.Body == "") {
				t.Errorf("body %q for gRPC=%v", a.Body, tc.grpc)
			}
			if k := x.Key(); k != tc.wantKey {
				t.Errorf("key %+v, want %+v", k, tc.wantKey)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		grpc   int32
		err    error
		fail   bool
	}{
		{200, -1, nil, false},
		{404, -1, nil, false},
		{503, -1, nil, true},
		{200, 0, nil, false},
		{200, 2, nil, true},
		{200, -1, errors.New("reset"), true},
	} {
		if got := Classify(tc.status, tc.grpc, tc.err).Failure; got != tc.fail {
			t.Errorf("Classify(%d, %d, %v).Failure = %v, want %v", tc.status, tc.grpc, tc.err, got, tc.fail)
		}
	}
}

func TestHopByHop(t *testing.T) {
	for name, want := range map[string]bool{
		"Connection": true, "keep-alive": true, "Proxy-Connection": true, "transfer-encoding": true,
		"TE": true, "Upgrade": true, "trailer": false, "content-length": false, "l5d-client-id": false, "x": false,
	} {
		if got := HopByHop(name); got != want {
			t.Errorf("HopByHop(%q) = %v, want %v", name, got, want)
		}
	}
}

// fixedResolver resolves every destination to one endpoint and names it.
type fixedResolver struct {
	ep        *balance.Endpoint
	canonical string
	resolved  []discovery.Destination
	outcomes  []error
}

func (r *fixedResolver) Resolve(_ context.Context, dst discovery.Destination) (balance.Balancer, error) {
	r.resolved = append(r.resolved, dst)
	if r.ep == nil {
		return nil, errors.New("no such service")
	}
	return r, nil
}

func (r *fixedResolver) Pick(context.Context) (*balance.Endpoint, func(error), error) {
	return r.ep, func(err error) { r.outcomes = append(r.outcomes, err) }, nil
}

func (r *fixedResolver) Close() {}

func (r *fixedResolver) CanonicalName(discovery.Destination) string { return r.canonical }

type mapHeader map[string]string

func (h mapHeader) Get(name string) string { return h[name] }

func TestOutboundChain(t *testing.T) {
	meshed := &balance.Endpoint{Addr: netip.MustParseAddrPort("10.0.0.7:8080"), Identity: "web.ns.serviceaccount.identity.linkerd.cluster.local", H2: true,
		Labels: metrics.Labels{{Name: "dst_pod", Value: "web-1"}}}
	for _, tc := range []struct {
		name          string
		opts          OutboundOptions
		proto         Protocol
		header        mapHeader
		status        int
		wantAuthority string
		wantFields    []Field
		wantOrigProto bool
		wantOutcome   error
	}{
		{
			name: "canonical name added, HTTP/1.1 to a meshed h2 peer goes orig-proto", opts: OutboundOptions{OrigProto: true},
			proto: HTTP1, status: 200, wantAuthority: "web.ns:8080",
			wantFields: []Field{{HeaderDstCanonical, "web.ns.svc.cluster.local:8080"}}, wantOrigProto: true,
		},
		{
			name: "orig-proto off", proto: HTTP1, status: 200, wantAuthority: "web.ns:8080",
			wantFields: []Field{{HeaderDstCanonical, "web.ns.svc.cluster.local:8080"}},
		},
		{
			name: "HTTP/2 stays HTTP/2", opts: OutboundOptions{OrigProto: true}, proto: HTTP2, status: 200, wantAuthority: "web.ns:8080",
			wantFields: []Field{{HeaderDstCanonical, "web.ns.svc.cluster.local:8080"}},
		},
		{
			name: "ingress mode routes by l5d-dst-override", opts: OutboundOptions{Ingress: true}, proto: HTTP1,
			header: mapHeader{HeaderDstOverride: "api.ns.svc.cluster.local:80"}, status: 200, wantAuthority: "api.ns.svc.cluster.local:80",
			wantFields: []Field{{HeaderDstCanonical, "web.ns.svc.cluster.local:8080"}},
		},
		{
			name: "a 5xx is a failure for the balancer", proto: HTTP1, status: 503, wantAuthority: "web.ns:8080",
			wantFields: []Field{{HeaderDstCanonical, "web.ns.svc.cluster.local:8080"}}, wantOutcome: ErrFailedResponse,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &fixedResolver{ep: meshed, canonical: "web.ns.svc.cluster.local:8080"}
			tc.opts.Registry, tc.opts.Resolver = metrics.NewRegistry(), res
			chain := Outbound(tc.opts)
			if got := chain.OwnedFields(); !reflect.DeepEqual(got, []string{HeaderDstCanonical}) {
				t.Errorf("owned fields %q", got)
			}
			var x Exchange
			x.Reset(&Conn{OrigDst: netip.MustParseAddrPort("10.96.0.1:8080")}, tc.proto, time.Now())
			x.Authority, x.Header = "web.ns:8080", tc.header
			if x.Header == nil {
				x.Header = mapHeader{}
			}
			if err := chain.Serve(context.Background(), &x, &terminal{status: tc.status}); err != nil {
				t.Fatal(err)
			}
			x.Finish(nil)
			if got := res.resolved[0].Authority; got != tc.wantAuthority {
				t.Errorf("resolved %q, want %q", got, tc.wantAuthority)
			}
			if !reflect.DeepEqual(x.Fields, tc.wantFields) {
				t.Errorf("fields %v, want %v", x.Fields, tc.wantFields)
			}
			if x.OrigProto != tc.wantOrigProto {
				t.Errorf("orig-proto %v, want %v", x.OrigProto, tc.wantOrigProto)
			}
			if !reflect.DeepEqual(res.outcomes, []error{tc.wantOutcome}) {
				t.Errorf("balancer told %v, want %v", res.outcomes, tc.wantOutcome)
			}
			m := tc.opts.Registry.HTTP(metrics.Labels{{Name: "direction", Value: "outbound"}, {Name: "authority", Value: "web.ns:8080"},
				{Name: "target_addr", Value: "10.0.0.7:8080"}, {Name: "target_ip", Value: "10.0.0.7"}, {Name: "target_port", Value: "8080"},
				{Name: "tls", Value: "true"}, {Name: "server_id", Value: meshed.Identity}, {Name: "dst_pod", Value: "web-1"}})
			if m.Requests() != 1 || m.ResponseCount(Classify(tc.status, -1, nil)) != 1 {
				t.Errorf("request_total %d, response_total %d", m.Requests(), m.ResponseCount(Classify(tc.status, -1, nil)))
			}
		})
	}
}

func TestOutboundNoEndpointCountsAsResponse(t *testing.T) {
	reg := metrics.NewRegistry()
	chain := Outbound(OutboundOptions{Registry: reg, Resolver: &fixedResolver{}})
	var x Exchange
	x.Reset(&Conn{}, HTTP1, time.Now())
	x.Authority, x.Header = "gone.ns:80", mapHeader{}
	err := chain.Serve(context.Background(), &x, &terminal{status: 200})
	if err == nil {
		t.Fatal("no error without an endpoint")
	}
	x.Fail(0, err)
	x.Finish(nil)
	m := reg.HTTP(metrics.Labels{{Name: "direction", Value: "outbound"}, {Name: "authority", Value: "gone.ns:80"}})
	k := metrics.ResponseKey{Status: 503, GRPCStatus: -1, Failure: true, Error: transport.ErrorReason(err)}
	if m.Requests() != 1 || m.ResponseCount(k) != 1 {
		t.Errorf("request_total %d, response_total{%+v} %d; want 1 and 1", m.Requests(), k, m.ResponseCount(k))
	}
}

func TestInboundChain(t *testing.T) {
	const id = "web.ns.serviceaccount.identity.linkerd.cluster.local"
	for _, tc := range []struct {
		name          string
		tls           transport.TLS
		proto         Protocol
		header        mapHeader
		wantFields    []Field
		wantOrigProto bool
	}{
		{"meshed client: its identity", transport.TLS{Mode: transport.TLSMeshed, ID: id}, HTTP1, mapHeader{}, []Field{{HeaderClientID, id}}, false},
		{"plaintext client: none", transport.NoIdentity("no_tls_from_remote"), HTTP1, mapHeader{}, []Field{}, false},
		{"HTTP/1.1 carried over HTTP/2 by the peer", transport.TLS{Mode: transport.TLSMeshed, ID: id}, HTTP2,
			mapHeader{HeaderOrigProto: OrigProtoHTTP11}, []Field{{HeaderClientID, id}}, true},
		{"gRPC from the peer stays HTTP/2", transport.TLS{Mode: transport.TLSMeshed, ID: id}, HTTP2, mapHeader{}, []Field{{HeaderClientID, id}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &fixedResolver{ep: &balance.Endpoint{Addr: netip.MustParseAddrPort("10.0.0.7:8080")}}
			chain := Inbound(InboundOptions{Registry: metrics.NewRegistry(), Resolver: res})
			if got := chain.OwnedFields(); !reflect.DeepEqual(got, []string{HeaderClientID}) {
				t.Errorf("owned fields %q", got)
			}
			var x Exchange
			x.Reset(&Conn{TLS: tc.tls}, tc.proto, time.Now())
			x.Header = tc.header
			if err := chain.Serve(context.Background(), &x, &terminal{status: 200}); err != nil {
				t.Fatal(err)
			}
			x.Finish(nil)
			if !reflect.DeepEqual(x.Fields, tc.wantFields) {
				t.Errorf("fields %v, want %v", x.Fields, tc.wantFields)
			}
			if x.OrigProto != tc.wantOrigProto {
				t.Errorf("orig-proto %v, want %v", x.OrigProto, tc.wantOrigProto)
			}
		})
	}
}

// empty is a layer that only goes on: the cost of a layer as such.
type empty struct{}

func (empty) Serve(ctx context.Context, x *Exchange) error { return x.Next(ctx) }

// BenchmarkChain runs a chain of n empty layers: the difference between
// n=0 and n=8, divided by 8, is what one layer costs.
func BenchmarkChain(b *testing.B) {
	for _, n := range []int{0, 1, 8} {
		b.Run(fmt.Sprintf("layers=%d", n), func(b *testing.B) {
			layers := make([]Layer, n)
			for i := range layers {
				layers[i] = empty{}
			}
			chain := NewChain(layers...)
			term := &terminal{status: 200}
			pc := &Conn{}
			var x Exchange
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				x.Reset(pc, HTTP1, time.Time{})
				_ = chain.Serve(ctx, &x, term)
				x.Finish(nil)
			}
		})
	}
}

// BenchmarkOutboundChain is the whole outbound chain on steady traffic (the
// metrics and canonical name cached on the connection).
func BenchmarkOutboundChain(b *testing.B) {
	res := &fixedResolver{ep: &balance.Endpoint{Addr: netip.MustParseAddrPort("10.0.0.7:8080"), Identity: "web.ns.serviceaccount.identity.linkerd.cluster.local", H2: true},
		canonical: "web.ns.svc.cluster.local:8080"}
	chain := Outbound(OutboundOptions{Registry: metrics.NewRegistry(), Resolver: nopResolver{res}, OrigProto: true})
	term := &terminal{status: 200}
	pc := &Conn{}
	h := mapHeader{}
	var x Exchange
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		x.Reset(pc, HTTP1, time.Now())
		x.Authority, x.Header = "web.ns:8080", h
		_ = chain.Serve(ctx, &x, term)
		x.Finish(nil)
	}
}

// nopResolver is fixedResolver without its recording (which allocates).
type nopResolver struct{ r *fixedResolver }

func (n nopResolver) Resolve(context.Context, discovery.Destination) (balance.Balancer, error) {
	return n, nil
}
func (n nopResolver) Pick(context.Context) (*balance.Endpoint, func(error), error) {
	return n.r.ep, nopDone, nil
}
func (n nopResolver) Close()                                     {}
func (n nopResolver) CanonicalName(discovery.Destination) string { return n.r.canonical }

func nopDone(error) {}
