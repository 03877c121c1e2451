package httpproxy

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// bodyReadingBackend is a raw backend that reads one request's body to the
// end and sends how that went: nil when the whole body arrived.
func bodyReadingBackend(t testing.TB) (*rawBackend, <-chan error) {
	t.Helper()
	gotErr := make(chan error, 1)
	be := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			gotErr <- err
			return
		}
		_, err = io.Copy(io.Discard, req.Body)
		gotErr <- err
	})
	return be, gotErr
}

// expectBodyAborted fails the test unless the backend's body read failed
// within five seconds, as it must when the client went away mid-request.
func expectBodyAborted(t testing.TB, gotErr <-chan error) {
	t.Helper()
	select {
	case err := <-gotErr:
		if err == nil {
			t.Fatal("backend read a complete body from a client that went away")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request not aborted when the client went away")
	}
}

// benchEcho posts 128 bytes through c to an echoing backend, b.N times.
func benchEcho(b *testing.B, c *http.Client) {
	b.Helper()
	payload := bytes.Repeat([]byte("x"), 128)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Post("http://bench.example/echo", "application/octet-stream", bytes.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// testOptions configure a test server: its direction's chain and engines.
type testOptions struct {
	Direction   string
	Resolver    discovery.Resolver
	Dialer      *transport.Dialer
	Metrics     *metrics.Registry
	IngressMode bool
	H2Upgrade   bool
	// IdleConnTimeout closes pooled upstream connections idle this long.
	IdleConnTimeout time.Duration
	// Route is the outbound route layer, if any.
	Route pipeline.Layer
	// Authz is the inbound authorization layer, if any.
	Authz pipeline.Layer
	// Inbound, given to newMeshPair, changes its inbound proxy's options.
	Inbound func(*testOptions)
}

// newTestServer returns a Server with the direction's chain, as inbound
// and outbound build them.
func newTestServer(o testOptions) *Server {
	var chain *pipeline.Chain
	if o.Direction == transport.Inbound {
		chain = pipeline.Inbound(pipeline.InboundOptions{Registry: o.Metrics, Resolver: o.Resolver, Authz: o.Authz})
	} else {
		chain = pipeline.Outbound(pipeline.OutboundOptions{Registry: o.Metrics, Resolver: o.Resolver,
			Ingress: o.IngressMode, OrigProto: o.H2Upgrade && o.Dialer.TLS != nil, Route: o.Route})
	}
	return NewServer(Options{Chain: chain, Dialer: o.Dialer, Logger: slog.New(slog.DiscardHandler), IdleConnTimeout: o.IdleConnTimeout,
		Direction: o.Direction, Metrics: o.Metrics})
}
