package h1

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testkit"
)

// fakeConn is a net.Conn that only records Close.
type fakeConn struct {
	net.Conn
	id     int
	closed atomic.Bool
}

func (c *fakeConn) Close() error             { c.closed.Store(true); return nil }
func (c *fakeConn) Read([]byte) (int, error) { return 0, net.ErrClosed }

func newFake(id int, key poolKey) (*upstream, *fakeConn) {
	fc := &fakeConn{id: id}
	return newUpstream(fc, key), fc
}

var (
	keyA = poolKey{addr: netip.MustParseAddrPort("10.0.0.1:80")}
	keyB = poolKey{addr: netip.MustParseAddrPort("10.0.0.1:80"), identity: "b.ns.serviceaccount.identity.linkerd.cluster.local"}
)

func TestPoolLIFOPerEndpoint(t *testing.T) {
	p := NewPool(4, time.Minute)
	defer p.Close()
	a1, _ := newFake(1, keyA)
	a2, _ := newFake(2, keyA)
	b1, _ := newFake(3, keyB)
	p.put(a1)
	p.put(a2)
	p.put(b1)
	if n := p.Idle(); n != 3 {
		t.Fatalf("idle = %d, want 3", n)
	}
	for i, want := range []*upstream{a2, a1, nil} {
		if got := p.get(keyA); got != want {
			t.Fatalf("get %d from A: got %v, want %v", i, got, want)
		}
	}
	if got := p.get(keyB); got != b1 {
		t.Fatal("B's connection not returned for B (same address, other identity)")
	}
	if !a1.reused || !b1.reused {
		t.Fatal("pooled connections not marked reused")
	}
}

func TestPoolMaxIdle(t *testing.T) {
	p := NewPool(2, time.Minute)
	defer p.Close()
	var fakes []*fakeConn
	for i := range 3 {
		u, fc := newFake(i, keyA)
		fakes = append(fakes, fc)
		p.put(u)
	}
	if n := p.Idle(); n != 2 {
		t.Fatalf("idle = %d, want 2", n)
	}
	if !fakes[2].closed.Load() || fakes[0].closed.Load() || fakes[1].closed.Load() {
		t.Fatal("the connection over the limit must be closed, the others kept")
	}
}

func TestPoolIdleTimeoutOnGet(t *testing.T) {
	p := NewPool(4, time.Hour)
	defer p.Close()
	u1, f1 := newFake(1, keyA)
	u2, f2 := newFake(2, keyA)
	p.put(u1)
	p.put(u2)
	// Age them past the timeout.
	p.mu.Lock()
	for _, u := range p.idle[keyA] {
		u.idleAt = time.Now().Add(-2 * time.Hour)
	}
	p.mu.Unlock()
	if got := p.get(keyA); got != nil {
		t.Fatal("expired connection returned")
	}
	if !f1.closed.Load() || !f2.closed.Load() {
		t.Fatal("expired connections not closed")
	}
	if n := p.Idle(); n != 0 {
		t.Fatalf("idle = %d, want 0", n)
	}
}

func TestPoolSweeper(t *testing.T) {
	p := NewPool(4, 20*time.Millisecond)
	defer p.Close()
	u, fc := newFake(1, keyA)
	p.put(u)
	testkit.EventuallyTrue(t, 5*time.Second, "the sweeper to close the idle connection", fc.closed.Load)
	// With nothing idle, the sweeper stops.
	testkit.EventuallyTrue(t, 5*time.Second, "the sweeper to stop with nothing idle", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.stop == nil
	})
	// And starts again for the next idle connection.
	u2, fc2 := newFake(2, keyA)
	p.put(u2)
	testkit.EventuallyTrue(t, 5*time.Second, "the restarted sweeper to close the idle connection", fc2.closed.Load)
}

func TestPoolCloseIdleAndClose(t *testing.T) {
	p := NewPool(4, time.Minute)
	u1, f1 := newFake(1, keyA)
	p.put(u1)
	p.CloseIdle()
	if !f1.closed.Load() || p.Idle() != 0 {
		t.Fatal("CloseIdle left an idle connection open")
	}
	u2, f2 := newFake(2, keyA)
	p.put(u2) // still usable after CloseIdle
	if f2.closed.Load() || p.Idle() != 1 {
		t.Fatal("pool refused a connection after CloseIdle")
	}
	p.Close()
	if !f2.closed.Load() {
		t.Fatal("Close left an idle connection open")
	}
	u3, f3 := newFake(3, keyA)
	p.put(u3)
	if !f3.closed.Load() || p.Idle() != 0 {
		t.Fatal("closed pool kept a connection")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		t.Fatal("sweeper left running after Close")
	}
}
