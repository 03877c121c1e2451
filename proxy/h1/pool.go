package h1

import (
	"bufio"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/linkerd-go/linkerd/proxy/balance"
)

// Pool defaults.
const (
	DefaultMaxIdlePerEndpoint = 128
	DefaultIdleTimeout        = 20 * time.Second
)

var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}

// upstream is a connection to an endpoint with its buffers.
type upstream struct {
	nc     net.Conn
	r      *reader
	w      *bufio.Writer
	key    poolKey
	idleAt time.Time
	reused bool // it served an exchange before
}

func newUpstream(nc net.Conn, key poolKey) *upstream {
	w := writers.Get().(*bufio.Writer)
	w.Reset(nc)
	return &upstream{nc: nc, r: newReader(nc), w: w, key: key}
}

// close closes the connection and gives its buffers back; only the owner
// of u calls it.
func (u *upstream) close() {
	_ = u.nc.Close()
	if u.r != nil {
		u.r.release()
		u.w.Reset(nil)
		writers.Put(u.w)
		u.r, u.w = nil, nil
	}
}

// poolKey identifies the endpoint a connection goes to: address and the
// TLS identity it was (or will be) established with.
type poolKey struct {
	addr     netip.AddrPort
	identity string
}

func keyOf(ep *balance.Endpoint) poolKey { return poolKey{addr: ep.Addr, identity: ep.Identity} }

// Pool keeps idle upstream connections per endpoint, most recently used
// first. Connections idle longer than the idle timeout are closed when met
// by Get and by a sweeper goroutine that runs while any connection is idle.
type Pool struct {
	maxIdle     int
	idleTimeout time.Duration

	mu    sync.Mutex
	idle  map[poolKey][]*upstream
	nidle int
	// closed pools keep nothing: Put closes.
	closed bool
	// The sweeper runs while nidle > 0; stop ends it early, done closes when it returns.
	stop, done chan struct{}
}

// NewPool returns a pool keeping at most maxIdle connections per endpoint
// for at most idleTimeout (zero values pick the defaults).
func NewPool(maxIdle int, idleTimeout time.Duration) *Pool {
	if maxIdle <= 0 {
		maxIdle = DefaultMaxIdlePerEndpoint
	}
	if idleTimeout <= 0 {
		idleTimeout = DefaultIdleTimeout
	}
	return &Pool{maxIdle: maxIdle, idleTimeout: idleTimeout, idle: map[poolKey][]*upstream{}}
}

// get returns an idle connection to key, or nil.
func (p *Pool) get(key poolKey) *upstream {
	now := time.Now()
	p.mu.Lock()
	l := p.idle[key]
	if len(l) == 0 {
		p.mu.Unlock()
		return nil
	}
	u := l[len(l)-1]
	l[len(l)-1] = nil
	if now.Sub(u.idleAt) < p.idleTimeout {
		p.idle[key] = l[:len(l)-1]
		p.nidle--
		p.mu.Unlock()
		return u
	}
	// The most recently used connection expired: so did all the others.
	delete(p.idle, key)
	p.nidle -= len(l)
	p.mu.Unlock()
	u.close()
	for _, v := range l[:len(l)-1] {
		v.close()
	}
	return nil
}

// put keeps u for reuse, or closes it when the pool is full or closed.
func (p *Pool) put(u *upstream) {
	u.idleAt = time.Now()
	u.reused = true
	p.mu.Lock()
	l := p.idle[u.key]
	if p.closed || len(l) >= p.maxIdle {
		p.mu.Unlock()
		u.close()
		return
	}
	p.idle[u.key] = append(l, u)
	p.nidle++
	if p.stop == nil {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.sweep(p.stop, p.done)
	}
	p.mu.Unlock()
}

// Idle returns the number of idle connections.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nidle
}

// sweep closes expired connections until none is idle or stop closes.
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
		var expired []*upstream
		deadline := time.Now().Add(-p.idleTimeout)
		p.mu.Lock()
		for k, l := range p.idle {
			n := 0 // l is oldest first: the first n expired
			for n < len(l) && l[n].idleAt.Before(deadline) {
				n++
			}
			if n == 0 {
				continue
			}
			expired = append(expired, l[:n]...)
			if n == len(l) {
				delete(p.idle, k)
			} else {
				p.idle[k] = append(l[:0], l[n:]...)
			}
			p.nidle -= n
		}
		current := p.stop == stop
		last := p.nidle == 0 || !current
		if last && current {
			p.stop, p.done = nil, nil
		}
		p.mu.Unlock()
		for _, u := range expired {
			u.close()
		}
		if last {
			return
		}
	}
}

// CloseIdle closes every idle connection and stops the sweeper.
func (p *Pool) CloseIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = map[poolKey][]*upstream{}
	p.nidle = 0
	stop, done := p.stop, p.done
	p.stop, p.done = nil, nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	for _, l := range idle {
		for _, u := range l {
			u.close()
		}
	}
}

// Close closes idle connections and makes the pool keep no more.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.CloseIdle()
}
