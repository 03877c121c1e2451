package h2

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/linkerd-go/linkerd/proxy/balance"
)

// DefaultIdleTimeout closes connections that carried no stream this long.
const DefaultIdleTimeout = 20 * time.Second

// maxDialWaits bounds how often Get waits for another request's dial that
// failed before giving up with that dial's error.
const maxDialWaits = 2

// Pool keeps HTTP/2 connections to peer proxies, keyed by endpoint
// address and identity. Requests share a connection as long as it has room
// for streams: concurrent requests to a peer with no connection wait for
// one dial instead of each opening its own. With Spread above 1, a new
// connection is opened while every existing one is busy, up to Spread.
type Pool struct {
	dial        func(ctx context.Context, ep *balance.Endpoint) (net.Conn, error)
	opts        Options
	idleTimeout time.Duration
	spread      int

	mu     sync.Mutex
	peers  map[peerKey]*peer
	nconns int
	closed bool
	// The sweeper runs while there are connections; stop ends it early.
	stop, done chan struct{}
}

type peerKey struct {
	addr     netip.AddrPort
	identity string
}

type peer struct {
	conns   []*Conn
	dialing *dialCall
}

// dialCall is a connection being opened; done closes when it is in the
// pool or failed with err.
type dialCall struct {
	done chan struct{}
	err  error
}

// PoolOptions configure a Pool.
type PoolOptions struct {
	// Dial opens a connection (mTLS, metered) to the endpoint's proxy.
	Dial func(ctx context.Context, ep *balance.Endpoint) (net.Conn, error)
	// Conn tunes each connection.
	Conn Options
	// IdleTimeout closes connections without streams for this long
	// (DefaultIdleTimeout when 0).
	IdleTimeout time.Duration
	// Spread is how many connections a peer gets at most while all of them
	// are busy (1 when 0): more than one only helps when a single
	// connection's goroutine or TCP window is the bottleneck.
	Spread int
}

// NewPool returns an empty pool.
func NewPool(o PoolOptions) *Pool {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Spread <= 0 {
		o.Spread = 1
	}
	o.Conn.fill()
	return &Pool{dial: o.Dial, opts: o.Conn, idleTimeout: o.IdleTimeout, spread: o.Spread, peers: make(map[peerKey]*peer)}
}

// ErrPoolClosed is returned by Get once the pool is closed.
var ErrPoolClosed = errors.New("h2: connection pool closed")

// Get returns a connection to ep's proxy with a stream reserved on it (see
// Conn.Reserve): an existing one with room, or a new one.
func (p *Pool) Get(ctx context.Context, ep *balance.Endpoint) (*Conn, error) {
	k := peerKey{addr: ep.Addr, identity: ep.Identity}
	waits := 0
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		pe := p.peers[k]
		if pe == nil {
			pe = &peer{}
			p.peers[k] = pe
		}
		best, busy := pe.best()
		if best != nil && (!busy || len(pe.conns) >= p.spread || pe.dialing != nil) {
			best.reserved++
			best.mu.Unlock()
			p.mu.Unlock()
			return best, nil
		}
		if best != nil {
			best.mu.Unlock()
		}
		dc := pe.dialing
		if dc == nil {
			dc = &dialCall{done: make(chan struct{})}
			pe.dialing = dc
			p.mu.Unlock()
			p.connect(ctx, k, pe, ep, dc)
			if dc.err != nil {
				return nil, dc.err
			}
			continue
		}
		p.mu.Unlock()
		select {
		case <-dc.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if dc.err != nil {
			if waits++; waits >= maxDialWaits {
				return nil, dc.err
			}
		}
	}
}

// best returns, locked, the connection with room and the fewest streams,
// and whether it has any stream; p.mu is held.
func (pe *peer) best() (*Conn, bool) {
	var best *Conn
	for _, cc := range pe.conns {
		cc.mu.Lock()
		if !cc.canTakeLocked(1) || (best != nil && cc.reserved >= best.reserved) {
			cc.mu.Unlock()
			continue
		}
		if best != nil {
			best.mu.Unlock()
		}
		best = cc
	}
	if best == nil {
		return nil, false
	}
	return best, best.reserved > 0
}

// connect dials a new connection for dc and adds it to the pool.
func (p *Pool) connect(ctx context.Context, k peerKey, pe *peer, ep *balance.Endpoint, dc *dialCall) {
	var cc *Conn
	nc, err := p.dial(ctx, ep)
	if err == nil {
		cc, err = NewClientConn(nc, p.opts, p.remove)
	}
	p.mu.Lock()
	pe.dialing = nil
	dc.err = err
	if err == nil && p.closed {
		dc.err = ErrPoolClosed
	}
	if dc.err == nil {
		pe.conns = append(pe.conns, cc)
		p.nconns++
		if p.stop == nil {
			p.stop, p.done = make(chan struct{}), make(chan struct{})
			go p.sweep(p.stop, p.done)
		}
	} else if len(pe.conns) == 0 && p.peers[k] == pe {
		delete(p.peers, k)
	}
	close(dc.done)
	p.mu.Unlock()
	if err == nil && dc.err != nil {
		cc.Close()
	}
}

// remove forgets cc once it has ended (its onClose).
func (p *Pool) remove(cc *Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, pe := range p.peers {
		for i, c := range pe.conns {
			if c != cc {
				continue
			}
			pe.conns = append(pe.conns[:i], pe.conns[i+1:]...)
			p.nconns--
			if len(pe.conns) == 0 && pe.dialing == nil {
				delete(p.peers, k)
			}
			return
		}
	}
}

// Conns returns the number of connections in the pool.
func (p *Pool) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nconns
}

// sweep closes idle connections, and those the peer no longer takes new
// streams on once they have none, until the pool is empty or stop closes.
// Idle means no stream for idleTimeout since the last one ended: a
// connection carrying streams, or that carried one recently, stays.
// Connections are closed gracefully (see Conn.retire).
func (p *Pool) sweep(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(max(p.idleTimeout/2, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		idle := p.takeIdle(time.Now())
		p.mu.Lock()
		last := p.nconns == len(idle) && p.stop == stop
		if last {
			p.stop, p.done = nil, nil
		}
		p.mu.Unlock()
		// Closing removes them from the pool (onClose).
		retireAll(idle)
		if last {
			return
		}
	}
}

// takeIdle marks the connections idle at now as retiring, so that Get
// takes no stream on them any more, and returns them.
func (p *Pool) takeIdle(now time.Time) []*Conn {
	var idle []*Conn
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pe := range p.peers {
		for _, cc := range pe.conns {
			cc.mu.Lock()
			if cc.retireIfIdleLocked(now, p.idleTimeout) {
				idle = append(idle, cc)
			}
			cc.mu.Unlock()
		}
	}
	return idle
}

// retireAll closes connections gracefully, in parallel.
func retireAll(conns []*Conn) {
	var wg sync.WaitGroup
	for _, cc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc.retire(goAwayLinger)
		}()
	}
	wg.Wait()
}

// CloseIdle closes, gracefully, the connections that have no stream.
func (p *Pool) CloseIdle() {
	retireAll(p.takeIdle(time.Now().Add(p.idleTimeout)))
}

// Close closes every connection and makes Get fail.
func (p *Pool) Close() {
	var all []*Conn
	p.mu.Lock()
	p.closed = true
	for _, pe := range p.peers {
		all = append(all, pe.conns...)
	}
	stop, done := p.stop, p.done
	p.stop, p.done = nil, nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	for _, cc := range all {
		cc.Close()
	}
}
