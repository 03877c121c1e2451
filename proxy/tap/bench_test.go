package tap

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// BenchmarkLayer is one request through the tap layer with no tap
// attached, and with one tap attached whose events are batched and
// marshalled as the tap API sends them (the TLS write left out).
//
//	go test ./proxy/tap -run - -bench Layer -benchmem
func BenchmarkLayer(b *testing.B) {
	for _, attached := range []bool{false, true} {
		name := "idle"
		if attached {
			name = "tapped"
		}
		b.Run(name, func(b *testing.B) {
			hub := NewHub(nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			if attached {
				tp := hub.Attach(&tapv1.Match{}, MaxLimit)
				tp.limit = 1e12 // admit every request
				go func() {
					defer close(done)
					_ = sendBatches(ctx, tp.events, tp.full, time.Millisecond, func(batch *tapv1.TapEvents) error {
						_, err := proto.Marshal(batch)
						return err
					})
				}()
			} else {
				close(done)
			}
			chain := pipeline.NewChain(endpoint{ep}, &Layer{Hub: hub, Direction: transport.Outbound})
			conn := &pipeline.Conn{Client: netip.MustParseAddrPort("10.0.0.1:40000")}
			term := answer{status: 200}
			var x pipeline.Exchange
			b.ReportAllocs()
			for b.Loop() {
				x.Reset(conn, pipeline.HTTP1, time.Now())
				x.Method, x.Authority, x.Path = "GET", "web.ns:8080", "/api/list"
				if err := chain.Serve(ctx, &x, term); err != nil {
					b.Fatal(err)
				}
				x.Finish(nil)
			}
			cancel()
			<-done
		})
	}
}
