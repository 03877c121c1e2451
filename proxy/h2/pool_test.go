package h2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/internal/proxytest"
)

// rawPeer is an HTTP/2 server written on the framer, to see exactly how a
// client ends its connections: it answers every request 200 and records,
// per connection, whether a GOAWAY came and how reading ended.
type rawPeer struct {
	addr  string
	mu    sync.Mutex
	ends  []peerEnd
	ended chan struct{} // one value per ended connection
}

type peerEnd struct {
	goAway  bool
	readErr error
}

func newRawPeer(t *testing.T) *rawPeer {
	p := &rawPeer{ended: make(chan struct{}, 100)}
	p.addr = proxytest.Serve(t, func(_ context.Context, c net.Conn) {
		end := p.serve(c)
		c.Close()
		p.mu.Lock()
		p.ends = append(p.ends, end)
		p.mu.Unlock()
		p.ended <- struct{}{}
	})
	return p
}

func (p *rawPeer) serve(c net.Conn) peerEnd {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil {
		return peerEnd{readErr: err}
	}
	var wmu sync.Mutex
	var hbuf bytes.Buffer
	fr := http2.NewFramer(c, c)
	enc := hpack.NewEncoder(&hbuf)
	_ = fr.WriteSettings()
	var end peerEnd
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			end.readErr = err
			return end
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				wmu.Lock()
				_ = fr.WriteSettingsAck()
				wmu.Unlock()
			}
		case *http2.HeadersFrame:
			if !f.StreamEnded() {
				continue // answered at the end of its body
			}
			p.respond(fr, &wmu, enc, &hbuf, f.StreamID)
		case *http2.DataFrame:
			if f.StreamEnded() {
				p.respond(fr, &wmu, enc, &hbuf, f.StreamID)
			}
		case *http2.GoAwayFrame:
			end.goAway = true
		}
	}
}

func (p *rawPeer) respond(fr *http2.Framer, wmu *sync.Mutex, enc *hpack.Encoder, hbuf *bytes.Buffer, id uint32) {
	wmu.Lock()
	defer wmu.Unlock()
	hbuf.Reset()
	_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true, EndStream: true})
}

// TestPoolIdleSweep checks what idle means for the pool: a connection that
// keeps carrying requests (one after the other, or one long stream) is
// never closed, however long it lives; one that carried none for the idle
// timeout is closed with GOAWAY and a clean end of the connection (EOF at
// the peer, not a reset).
func TestPoolIdleSweep(t *testing.T) {
	const idle = 200 * time.Millisecond
	peer := newRawPeer(t)
	var dials atomic.Int32
	p := NewPool(PoolOptions{IdleTimeout: idle, Dial: func(ctx context.Context, ep *balance.Endpoint) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, "tcp", ep.Addr.String())
	}})
	defer p.Close()
	ep := &balance.Endpoint{Addr: mustAddrPort(t, peer.addr), Identity: "peer"}
	request := func() {
		t.Helper()
		cc, err := p.Get(context.Background(), ep)
		if err != nil {
			t.Fatal(err)
		}
		s, err := cc.Open(reqFields("GET", "/"), nil, true)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.ReadHead(); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(s); err != nil {
			t.Fatal(err)
		}
	}

	// Busy with one request after another for 5 idle timeouts.
	for end := time.Now().Add(5 * idle); time.Now().Before(end); {
		request()
		time.Sleep(idle / 10)
	}
	// One stream open for 5 idle timeouts.
	cc, err := p.Get(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	long, err := cc.Open(reqFields("POST", "/long"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * idle)
	if err := long.WriteData(nil, true); err != nil {
		t.Fatalf("the long stream's connection was closed: %v", err)
	}
	if _, err := long.ReadHead(); err != nil {
		t.Fatal(err)
	}
	long.Close()
	request()
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d connections dialed for continuous use, want 1", n)
	}

	// Idle: closed, gracefully.
	select {
	case <-peer.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle connection was not closed")
	}
	peer.mu.Lock()
	end := peer.ends[0]
	peer.mu.Unlock()
	if !end.goAway {
		t.Error("no GOAWAY before the close")
	}
	if !errors.Is(end.readErr, io.EOF) || errors.Is(end.readErr, syscall.ECONNRESET) {
		t.Errorf("the peer's read ended with %v, want EOF", end.readErr)
	}
	testkit.Eventually(t, 5*time.Second, func() error {
		if n := p.Conns(); n != 0 {
			return fmt.Errorf("%d connections left in the pool", n)
		}
		return nil
	})
}

// TestPoolNeverRetiresReserved checks the sweep against a Get racing it: a
// connection with a reservation is not retired, and a retiring one is not
// handed out.
func TestPoolNeverRetiresReserved(t *testing.T) {
	peer := newRawPeer(t)
	p := NewPool(PoolOptions{IdleTimeout: time.Hour, Dial: func(ctx context.Context, ep *balance.Endpoint) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", ep.Addr.String())
	}})
	defer p.Close()
	ep := &balance.Endpoint{Addr: mustAddrPort(t, peer.addr), Identity: "peer"}
	cc, err := p.Get(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Hour)
	if got := p.takeIdle(later); len(got) != 0 {
		t.Fatalf("retired a connection with a reserved stream")
	}
	cc.Release()
	got := p.takeIdle(later)
	if len(got) != 1 || got[0] != cc {
		t.Fatalf("takeIdle = %v, want the idle connection", got)
	}
	if cc.Reserve() {
		t.Fatal("a retiring connection took a stream")
	}
	cc2, err := p.Get(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	if cc2 == cc {
		t.Fatal("Get handed out a retiring connection")
	}
	cc2.Release()
	retireAll(got)
}
