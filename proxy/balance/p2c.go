package balance

import (
	"context"
	"errors"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by P2C.Pick.
var (
	// ErrNoEndpoints means the balancer has no endpoints at all.
	ErrNoEndpoints = errors.New("balance: no endpoints")
	// ErrUnavailable means every endpoint is ejected by failure accrual (or
	// has its single probe request in flight): fail fast instead of piling
	// requests onto a dead set.
	ErrUnavailable = errors.New("balance: all endpoints are failing")
)

// Defaults for Options fields left zero.
const (
	// DefaultWeight is the weight of an endpoint whose Weight is 0. It is the
	// weight Linkerd's destination service gives endpoints by default, so
	// endpoints with and without an explicit weight mix sensibly.
	DefaultWeight = 10000
	// DefaultRTT is the balancer's reference latency until any endpoint has
	// answered: the estimate of endpoints that have not answered yet.
	DefaultRTT = 30 * time.Millisecond
	// DefaultDecay is the time constant of the peak-EWMA latency estimate.
	// It is short enough that one slow answer (a connection set-up, a
	// pause) does not keep an endpoint from its share for long at low
	// request rates.
	DefaultDecay = 2 * time.Second
	// DefaultSlowStart is the time over which the share of a new endpoint
	// ramps up.
	DefaultSlowStart = 10 * time.Second
	// DefaultFailureThreshold is how many consecutive failures eject an endpoint.
	DefaultFailureThreshold = 7
	// DefaultMinBackoff is how long an endpoint is first ejected for.
	DefaultMinBackoff = time.Second
	// DefaultMaxBackoff caps the ejection time of an endpoint that keeps failing.
	DefaultMaxBackoff = time.Minute
	// DefaultJitter is the fraction of an ejection time added at random.
	DefaultJitter = 0.5
)

// Options tune a P2C balancer. The zero value gives Linkerd's defaults.
type Options struct {
	// DefaultRTT is the reference latency before any endpoint answered
	// (DefaultRTT when 0).
	DefaultRTT time.Duration
	// Decay is the time constant of the latency estimates: how fast one
	// moves towards lower observations and, while the endpoint is not
	// observed, towards the balancer's reference latency, so that a
	// once-slow endpoint is tried again (DefaultDecay when 0).
	Decay time.Duration
	// Algorithm is the initial algorithm (PeakEWMA when zero); see
	// SetAlgorithm.
	Algorithm Algorithm
	// SlowStart is the time over which the share of an endpoint added to a
	// balancer that already has endpoints ramps up linearly, from
	// minRamp of its share to all of it (DefaultSlowStart when 0; negative
	// disables slow start and exploration).
	SlowStart time.Duration

	// FailureThreshold is how many consecutive failed requests eject an
	// endpoint (DefaultFailureThreshold when 0; negative disables failure
	// accrual).
	FailureThreshold int
	// MinBackoff is the first ejection time (DefaultMinBackoff when 0); each
	// further ejection without a success in between doubles it.
	MinBackoff time.Duration
	// MaxBackoff caps the ejection time (DefaultMaxBackoff when 0).
	MaxBackoff time.Duration
	// Jitter adds up to this fraction of an ejection time at random, capped
	// at MaxBackoff (DefaultJitter when 0; negative disables jitter).
	Jitter float64

	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Rand is the randomness source (the goroutine-safe math/rand/v2
	// global source when nil). The balancer serializes its calls to it, so
	// a seeded source such as rand.NewPCG gives deterministic tests.
	Rand rand.Source

	// OnEject, when set, is called when an endpoint is ejected, with the
	// ejection time. OnRestore, when set, is called when an ejected
	// endpoint's probe request succeeds. Both run synchronously on the
	// goroutine that finished the request, without locks held: keep them quick.
	OnEject   func(addr netip.AddrPort, backoff time.Duration)
	OnRestore func(addr netip.AddrPort)
}

// EndpointStats is a snapshot of one endpoint's balancing state.
type EndpointStats struct {
	Addr   netip.AddrPort
	Weight uint32
	// EWMA is the current peak-EWMA latency estimate.
	EWMA time.Duration
	// InFlight is the number of requests picked but not done yet.
	InFlight int
	// ConsecutiveFailures counts failures since the last success.
	ConsecutiveFailures int
	// Ejected is true while failure accrual keeps normal traffic away: during
	// the backoff and while the probe request is in flight.
	Ejected bool
	// Probing is true while the single probe request is in flight.
	Probing bool
}

// P2C is the balancer of a destination's endpoints. It runs one of the
// Algorithms, chosen by SetAlgorithm; by default PeakEWMA, a latency-aware
// power of two choices: each pick draws two distinct endpoints at random,
// weighted by Endpoint.Weight, and compares their costs,
//
//	cost = (estimate + reference) × (in-flight + 1) / weight
//
// where estimate is the endpoint's peak-EWMA latency: an answer slower than
// the estimate moves it halfway there at once (a slow endpoint is noticed
// within a few answers), a faster one pulls it down with the time constant
// Decay.
//
// Linkerd takes the cheaper of the two every time. With little traffic
// in-flight counts are all 0 and the endpoint whose estimate happens to be
// lower takes everything, while a new endpoint, assumed slow until it
// answers, may wait many seconds for its first request. Three changes make
// equal endpoints share traffic at any rate, while a slow or failing one is
// still avoided:
//
//   - The choice is soft: of costs a and b, a is taken with probability
//     b²/(a²+b²), drawn quasi-randomly (see prefer). Equal endpoints get
//     even shares; of two endpoints, one 10 times slower than the other
//     gets about 3% of the picks. The reference latency added to the estimate damps small
//     differences (a 30% slower estimate costs 15% more), which at low
//     rates are mostly noise (a few slow answers in a row), so that equal
//     endpoints are not starved by chance.
//   - There is a reference latency: the lowest estimate of the endpoints
//     that answered and are not ejected (DefaultRTT before any answer). An
//     endpoint that has not answered yet is estimated at the reference
//     (neither avoided nor flooded), and while an endpoint is not observed
//     its estimate moves towards the reference rather than towards 0: a
//     one-off slow answer is forgiven within a few Decays, a permanently
//     slow endpoint is re-tested now and then and avoided again.
//   - Slow start: an endpoint added to a balancer that already has
//     endpoints gets the next pick at once (exploration), then its share
//     ramps up over SlowStart: a pick that would go to it goes to the
//     other candidate unless a random draw below age/SlowStart (at least
//     minRamp) admits it.
//
// Endpoints that fail FailureThreshold times in a row are ejected for an
// exponentially growing backoff, then get a single probe request: its success
// restores the endpoint, its failure ejects it again. Exploration, slow start
// and ejection apply to every algorithm.
//
// P2C is safe for concurrent use. Pick does not allocate in steady state.
type P2C struct {
	now        func() time.Time
	epoch      time.Time
	decay      float64 // ns
	defaultRTT float64 // ns
	slowStart  int64   // ns; 0: no slow start
	alg        atomic.Uint32
	rr         atomic.Uint64 // round-robin position
	seq        atomic.Uint64 // position in the choices' quasi-random sequence
	threshold  int
	minBackoff int64 // ns
	maxBackoff int64 // ns
	jitter     float64
	onEject    func(netip.AddrPort, time.Duration)
	onRestore  func(netip.AddrPort)

	randMu sync.Mutex
	src    rand.Source // nil: global source, no lock

	// ref is the reference latency (float64 bits, ns); refScan is when it
	// was last computed (0: never).
	ref     atomic.Uint64
	refScan atomic.Int64

	mu    sync.Mutex // serializes Update
	set   atomic.Pointer[endpointSet]
	calls sync.Pool // *call
}

var _ Balancer = (*P2C)(nil)

// NewP2C returns a P2C balancer without endpoints; give it some with Update.
func NewP2C(opts Options) *P2C {
	p := &P2C{
		now:        opts.Now,
		decay:      float64(orDefault(opts.Decay, DefaultDecay)),
		defaultRTT: float64(orDefault(opts.DefaultRTT, DefaultRTT)),
		threshold:  opts.FailureThreshold,
		minBackoff: int64(orDefault(opts.MinBackoff, DefaultMinBackoff)),
		maxBackoff: int64(orDefault(opts.MaxBackoff, DefaultMaxBackoff)),
		jitter:     opts.Jitter,
		onEject:    opts.OnEject,
		onRestore:  opts.OnRestore,
		src:        opts.Rand,
	}
	p.ref.Store(math.Float64bits(p.defaultRTT))
	p.alg.Store(uint32(opts.Algorithm))
	switch {
	case opts.SlowStart == 0:
		p.slowStart = int64(DefaultSlowStart)
	case opts.SlowStart > 0:
		p.slowStart = int64(opts.SlowStart)
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.epoch = p.now()
	if p.threshold == 0 {
		p.threshold = DefaultFailureThreshold
	}
	if p.maxBackoff < p.minBackoff {
		p.maxBackoff = p.minBackoff
	}
	switch {
	case p.jitter == 0:
		p.jitter = DefaultJitter
	case p.jitter < 0:
		p.jitter = 0
	}
	p.calls.New = func() any {
		c := &call{p: p}
		c.fn = c.done
		return c
	}
	p.set.Store(&endpointSet{})
	return p
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// SetAlgorithm switches the balancing algorithm; the endpoints keep their
// state.
func (p *P2C) SetAlgorithm(a Algorithm) { p.alg.Store(uint32(a)) }

// Algorithm returns the current algorithm.
func (p *P2C) Algorithm() Algorithm { return Algorithm(p.alg.Load()) }

// Update replaces the endpoint set. Endpoints are keyed by Addr: those
// already known keep their latency estimate, in-flight count and failure
// state (their other fields, such as Weight or Labels, are taken from eps).
// Of duplicate addresses the last one wins; nil entries are ignored.
// Endpoints new to a balancer that had endpoints are explored and
// slow-started.
func (p *P2C) Update(eps []*Endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.set.Load()
	now := p.nanotime()
	ns := &endpointSet{
		entries: make([]entry, 0, len(eps)),
		byAddr:  make(map[netip.AddrPort]int, len(eps)),
	}
	for _, ep := range eps {
		if ep == nil {
			continue
		}
		w := ep.Weight
		if w == 0 {
			w = DefaultWeight
		}
		if i, dup := ns.byAddr[ep.Addr]; dup {
			ns.entries[i].ep = ep
			ns.entries[i].setWeight(w)
			continue
		}
		var st *endpointState
		if i, ok := old.byAddr[ep.Addr]; ok {
			st = old.entries[i].st
		} else {
			st = &endpointState{addr: ep.Addr}
			if len(old.entries) > 0 && p.slowStart > 0 {
				st.rampStart, st.rampEnd = now, now+p.slowStart
				st.explore.Store(true)
			}
		}
		if st.explore.Load() {
			ns.explore = append(ns.explore, len(ns.entries))
		}
		ns.byAddr[ep.Addr] = len(ns.entries)
		e := entry{ep: ep, st: st}
		e.setWeight(w)
		ns.entries = append(ns.entries, e)
	}
	ns.index()
	p.set.Store(ns)
}

// Len returns the number of endpoints.
func (p *P2C) Len() int { return len(p.set.Load().entries) }

// Stats returns a snapshot of every endpoint's state, in Update order.
func (p *P2C) Stats() []EndpointStats {
	s := p.set.Load()
	now := p.nanotime()
	out := make([]EndpointStats, len(s.entries))
	for i := range s.entries {
		e := &s.entries[i]
		st := e.st
		st.mu.Lock()
		failures := st.failures
		st.mu.Unlock()
		g := st.gate.Load()
		out[i] = EndpointStats{
			Addr:                e.ep.Addr,
			Weight:              e.weight,
			EWMA:                time.Duration(st.estimate(now, p.decay, p.reference())),
			InFlight:            int(max(st.inflight.Load(), 0)),
			ConsecutiveFailures: failures,
			Ejected:             g != gateHealthy,
			Probing:             g == gateProbing,
		}
	}
	return out
}

// maxDraws bounds the random draws of a pick before it falls back to scanning
// for endpoints that are not ejected.
const maxDraws = 2

// Pick implements Balancer. The returned done must be called exactly once,
// with the request's error (nil on success), and not used afterwards: it is
// recycled for later picks. ctx is not used: Pick never blocks.
func (p *P2C) Pick(context.Context) (*Endpoint, func(error), error) {
	s := p.set.Load()
	n := len(s.entries)
	if n == 0 {
		return nil, nil, ErrNoEndpoints
	}
	now := p.nanotime()
	if n == 1 {
		e := &s.entries[0]
		if probe, ok := e.st.acquire(now); ok {
			return e.ep, p.track(e.st, now, probe), nil
		}
		return nil, nil, ErrUnavailable
	}
	for _, i := range s.explore {
		// A new endpoint's first request, ahead of any algorithm.
		e := &s.entries[i]
		if e.st.explore.Load() && e.st.available(now) && e.st.explore.CompareAndSwap(true, false) {
			if probe, ok := e.st.acquire(now); ok {
				return e.ep, p.track(e.st, now, probe), nil
			}
		}
	}
	alg := Algorithm(p.alg.Load())
	if alg == RoundRobin {
		if e, probe, ok := p.nextInTurn(s, now); ok {
			return e.ep, p.track(e.st, now, probe), nil
		}
		return nil, nil, ErrUnavailable
	}
	for range maxDraws {
		i, j := s.draw2(p.rand64(), p.rand64())
		if j < i {
			i, j = j, i // see prefer
		}
		if e, probe, ok := p.better(&s.entries[i], &s.entries[j], now, alg, true); ok {
			return e.ep, p.track(e.st, now, probe), nil
		}
	}
	// Both draws hit ejected endpoints: draw among the available ones only.
	for range maxDraws {
		i, j, m := s.drawAvailable(now, p.rand64(), p.rand64())
		if m == 0 {
			break
		}
		a := &s.entries[i]
		if m == 1 {
			if probe, ok := a.st.acquire(now); ok {
				return a.ep, p.track(a.st, now, probe), nil
			}
			continue
		}
		b := &s.entries[j]
		if j < i {
			a, b = b, a
		}
		if e, probe, ok := p.better(a, b, now, alg, false); ok {
			return e.ep, p.track(e.st, now, probe), nil
		}
	}
	return nil, nil, ErrUnavailable
}

// better acquires the preferred one of a and b by the algorithm's cost, or
// the other one when that fails. With ramp, an endpoint in slow start
// must also be admitted. a comes before b in the endpoint set.
func (p *P2C) better(a, b *entry, now int64, alg Algorithm, ramp bool) (*entry, bool, bool) {
	la, oka := p.cost(a, now, alg, ramp)
	lb, okb := p.cost(b, now, alg, ramp)
	switch {
	case !oka && !okb:
		return nil, false, false
	case !oka:
		a, b, okb = b, a, false
	case !okb:
	case !p.prefer(la, lb, alg):
		a, b = b, a
	}
	if probe, ok := a.st.acquire(now); ok {
		return a, probe, true
	}
	if okb {
		if probe, ok := b.st.acquire(now); ok {
			return b, probe, true
		}
	}
	return nil, false, false
}

// cost is e's cost under alg, and whether e can take a request now: it is
// healthy, or ejected with its backoff over (cost 0: probe at once), and,
// with ramp, admitted by slow start.
func (p *P2C) cost(e *entry, now int64, alg Algorithm, ramp bool) (float64, bool) {
	st := e.st
	switch g := st.gate.Load(); {
	case g == gateHealthy:
	case g > 0 && now >= g:
		return 0, true
	default:
		return 0, false
	}
	if ramp && !p.admit(st, now) {
		return 0, false
	}
	pending := float64(max(st.inflight.Load(), 0) + 1)
	if alg == LeastRequest {
		return pending * e.invWeight, true
	}
	ref := p.reference()
	return (st.estimate(now, p.decay, ref) + ref) * pending * e.invWeight, true
}

// prefer reports whether to take the endpoint of cost a over that of cost b.
// Least-request takes the lower cost, peak-EWMA takes a with probability
// b²/(a²+b²); ties are broken at random.
//
// The draws come from a quasi-random sequence (Weyl's: k × the golden ratio,
// modulo 1) rather than independent random numbers: over n choices between
// the same two endpoints each gets its expected share within O(log n)
// picks, where coin flips would be off by O(√n). better passes the pair in
// a fixed order for the same reason.
func (p *P2C) prefer(a, b float64, alg Algorithm) bool {
	u := float64(p.seq.Add(1)*0x9e3779b97f4a7c15>>11) / (1 << 53)
	switch {
	case a == b:
		return u < 0.5
	case alg == LeastRequest:
		return a < b
	}
	a2, b2 := a*a, b*b
	return u*(a2+b2) < b2
}

// minRamp is the least fraction of its share an endpoint in slow start is
// admitted to.
const minRamp = 0.05

// admit reports whether st, which may be in slow start, takes a pick it won.
func (p *P2C) admit(st *endpointState, now int64) bool {
	if now >= st.rampEnd {
		return true
	}
	r := max(float64(now-st.rampStart)/float64(p.slowStart), minRamp)
	return p.randFloat() < r
}

// nextInTurn acquires the next endpoint in round-robin order that is
// available (and admitted by slow start; failing that, any available one).
func (p *P2C) nextInTurn(s *endpointSet, now int64) (*entry, bool, bool) {
	n := uint64(len(s.entries))
	start := p.rr.Add(1) - 1
	for _, ramp := range [2]bool{true, false} {
		for k := range n {
			e := &s.entries[(start+k)%n]
			if !e.st.available(now) || (ramp && !p.admit(e.st, now)) {
				continue
			}
			if probe, ok := e.st.acquire(now); ok {
				return e, probe, true
			}
		}
	}
	return nil, false, false
}

// reference is the balancer's reference latency.
func (p *P2C) reference() float64 { return math.Float64frombits(p.ref.Load()) }

// refScanEvery is how often, at most, finish recomputes the reference.
const refScanEvery = int64(10 * time.Millisecond)

// updateRef sets the reference to the lowest estimate of the endpoints that
// answered and are not ejected, at most every refScanEvery (at once for
// the first answer).
func (p *P2C) updateRef(now int64) {
	last := p.refScan.Load()
	if (last != 0 && now-last < refScanEvery) || !p.refScan.CompareAndSwap(last, max(now, 1)) {
		return
	}
	ref := p.reference()
	lowest := math.Inf(1)
	s := p.set.Load()
	for i := range s.entries {
		st := s.entries[i].st
		if st.seen.Load() && st.gate.Load() == gateHealthy {
			lowest = min(lowest, st.estimate(now, p.decay, ref))
		}
	}
	if !math.IsInf(lowest, 1) {
		p.ref.Store(math.Float64bits(lowest))
	}
}

// track returns the done function of a request to st started at now.
func (p *P2C) track(st *endpointState, now int64, probe bool) func(error) {
	c := p.calls.Get().(*call)
	c.st, c.start, c.probe = st, now, probe
	return c.fn
}

// call is one picked request; pooled, with its done method value bound once,
// so that picks do not allocate.
type call struct {
	p     *P2C
	st    *endpointState
	start int64
	probe bool
	fn    func(error) // c.done
}

func (c *call) done(err error) {
	st := c.st
	if st == nil {
		return // called twice before being reused
	}
	p, start, probe := c.p, c.start, c.probe
	c.st = nil
	p.calls.Put(c)
	p.finish(st, start, probe, err)
}

type event int

const (
	eventNone event = iota
	eventEject
	eventRestore
)

// finish records the outcome of a request to st.
func (p *P2C) finish(st *endpointState, start int64, probe bool, err error) {
	now := p.nanotime()
	failed := err != nil
	st.inflight.Add(-1)
	rtt := float64(max(now-start, 0))
	st.mu.Lock()
	st.observe(now, rtt, failed, p.decay, p.reference())
	ev, backoff := eventNone, int64(0)
	if p.threshold > 0 {
		ev, backoff = p.accrue(st, now, rtt, probe, failed)
	}
	st.mu.Unlock()
	p.updateRef(now)
	switch {
	case ev == eventEject && p.onEject != nil:
		p.onEject(st.addr, time.Duration(backoff))
	case ev == eventRestore && p.onRestore != nil:
		p.onRestore(st.addr)
	}
}

// accrue runs failure accrual for one outcome of latency rtt; st.mu is held.
func (p *P2C) accrue(st *endpointState, now int64, rtt float64, probe, failed bool) (event, int64) {
	switch g := st.gate.Load(); {
	case g == gateHealthy:
		if !failed {
			st.failures = 0
			return eventNone, 0
		}
		st.failures++
		if st.failures < p.threshold {
			return eventNone, 0
		}
		return eventEject, p.eject(st, now)
	case g == gateProbing && probe:
		if failed {
			return eventEject, p.eject(st, now)
		}
		st.failures = 0
		st.ejections = 0
		// The estimate from before the ejection is stale: start over from
		// the probe's latency.
		st.rtt.Store(math.Float64bits(rtt))
		st.stamp.Store(now)
		st.seen.Store(true)
		st.gate.Store(gateHealthy)
		return eventRestore, 0
	default:
		// Requests picked before the ejection, or next to the probe, finishing
		// late: only the probe decides.
		return eventNone, 0
	}
}

// eject closes st's gate for the next backoff and returns it; st.mu is held.
func (p *P2C) eject(st *endpointState, now int64) int64 {
	d := p.backoff(st.ejections, p.jitter*p.randFloat())
	st.ejections++
	st.failures = 0
	st.gate.Store(now + d) // > 0 since now >= 0 and d >= minBackoff > 0
	return d
}

// backoff is the ejection time after n earlier consecutive ejections,
// stretched by the fraction jitter and capped at maxBackoff.
func (p *P2C) backoff(n int, jitter float64) int64 {
	d := p.maxBackoff
	if n < 62 && p.minBackoff <= p.maxBackoff>>n {
		d = p.minBackoff << n
	}
	d += int64(float64(d) * jitter)
	return min(d, p.maxBackoff)
}

// nanotime is the time since the balancer was created, in nanoseconds.
func (p *P2C) nanotime() int64 { return int64(p.now().Sub(p.epoch)) }

func (p *P2C) rand64() uint64 {
	if p.src == nil {
		return rand.Uint64()
	}
	p.randMu.Lock()
	v := p.src.Uint64()
	p.randMu.Unlock()
	return v
}

// randFloat returns a random float64 in [0, 1).
func (p *P2C) randFloat() float64 { return float64(p.rand64()>>11) / (1 << 53) }

// below maps a uniform random r to [0, n).
func below(r, n uint64) uint64 {
	hi, _ := bits.Mul64(r, n)
	return hi
}

// endpointSet is an immutable endpoint set; Update replaces it whole.
type endpointSet struct {
	entries []entry
	byAddr  map[netip.AddrPort]int // index into entries
	// cum holds prefix sums of the weights; nil when all weights are equal.
	cum []uint64
	// explore lists the entries that had not been picked yet when the set
	// was made and must be explored.
	explore []int
}

type entry struct {
	ep        *Endpoint
	st        *endpointState
	weight    uint32
	invWeight float64 // DefaultWeight / weight
}

func (e *entry) setWeight(w uint32) {
	e.weight = w
	e.invWeight = DefaultWeight / float64(w)
}

func (s *endpointSet) index() {
	s.cum = nil
	for i := 1; i < len(s.entries); i++ {
		if s.entries[i].weight != s.entries[0].weight {
			s.cum = make([]uint64, len(s.entries))
			break
		}
	}
	var sum uint64
	for i := range s.cum {
		sum += uint64(s.entries[i].weight)
		s.cum[i] = sum
	}
}

// draw2 maps two random numbers to two distinct entries, each drawn with
// probability proportional to its weight (the second among the rest).
// There must be at least two entries.
func (s *endpointSet) draw2(r1, r2 uint64) (int, int) {
	n := uint64(len(s.entries))
	if s.cum == nil {
		i := below(r1, n)
		j := below(r2, n-1)
		if j >= i {
			j++
		}
		return int(i), int(j)
	}
	total := s.cum[n-1]
	i := s.search(below(r1, total))
	w := uint64(s.entries[i].weight)
	x := below(r2, total-w)
	if x >= s.cum[i]-w {
		x += w
	}
	return i, s.search(x)
}

// search returns the entry whose weight range holds x < total weight.
func (s *endpointSet) search(x uint64) int {
	lo, hi := 0, len(s.cum)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.cum[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// drawAvailable is draw2 among the entries available now, scanning them all.
// m is how many are available; j is meaningful only when m >= 2.
func (s *endpointSet) drawAvailable(now int64, r1, r2 uint64) (i, j, m int) {
	var total uint64
	i = -1
	for k := range s.entries {
		if s.entries[k].st.available(now) {
			total += uint64(s.entries[k].weight)
			m++
			i = k
		}
	}
	if m < 2 {
		return i, -1, m
	}
	i = s.nthAvailable(now, below(r1, total), -1)
	x := below(r2, total-uint64(s.entries[i].weight))
	j = s.nthAvailable(now, x, i)
	if j < 0 {
		// An entry became unavailable during the scan: take any other.
		return i, -1, 1
	}
	return i, j, m
}

// nthAvailable returns the available entry, other than skip, whose range
// in the weights of those entries holds x; -1 if there is none.
func (s *endpointSet) nthAvailable(now int64, x uint64, skip int) int {
	last := -1
	for k := range s.entries {
		if k == skip || !s.entries[k].st.available(now) {
			continue
		}
		last = k
		w := uint64(s.entries[k].weight)
		if x < w {
			return k
		}
		x -= w
	}
	return last
}

// Gate values of an endpointState; positive values mean ejected until then.
const (
	gateHealthy int64 = 0
	gateProbing int64 = -1
)

// endpointState is an endpoint's statistics, shared by the endpoint sets
// that contain its address. Pick reads it lock-free; finish writes it under mu.
type endpointState struct {
	addr     netip.AddrPort
	inflight atomic.Int64
	// rtt (float64 bits, ns) and stamp (ns since the epoch) are the latency
	// estimate and when it was last updated, once seen (the endpoint has
	// answered). A pick may see one updated without the other: it then
	// misjudges the decay once, which is harmless.
	rtt   atomic.Uint64
	stamp atomic.Int64
	seen  atomic.Bool
	// rampStart and rampEnd delimit the endpoint's slow start (both 0: none).
	rampStart, rampEnd int64
	// explore is set until a new endpoint's first pick.
	explore atomic.Bool
	// gate is gateHealthy, gateProbing, or the time the endpoint's ejection
	// ends. Holding the end time makes the ejected→probing transition a CAS
	// that cannot confuse two ejections.
	gate atomic.Int64

	mu        sync.Mutex
	failures  int // consecutive
	ejections int // consecutive, for the backoff
}

// available reports whether the endpoint can take a request: it is healthy,
// or its ejection is over and its probe not taken yet.
func (st *endpointState) available(now int64) bool {
	g := st.gate.Load()
	return g == gateHealthy || (g > 0 && now >= g)
}

// acquire claims a request slot; probe is true when the request is the
// endpoint's probe after an ejection.
func (st *endpointState) acquire(now int64) (probe, ok bool) {
	switch g := st.gate.Load(); {
	case g == gateHealthy:
	case g > 0 && now >= g && st.gate.CompareAndSwap(g, gateProbing):
		probe = true
	default:
		return false, false
	}
	st.inflight.Add(1)
	return probe, true
}

// estimate is the latency estimate at now: the reference ref until the
// endpoint answered, then the stored one moved towards ref for the time
// since it was stored.
func (st *endpointState) estimate(now int64, decay, ref float64) float64 {
	if !st.seen.Load() {
		return ref
	}
	rtt := math.Float64frombits(st.rtt.Load())
	if el := now - st.stamp.Load(); el > 0 {
		rtt = ref + (rtt-ref)*math.Exp(-float64(el)/decay)
	}
	return rtt
}

// peakGain is how much of the way to a slower answer the estimate goes at
// once: a slow endpoint is judged slow by its second or third answer,
// while a single slow answer among fast ones costs less of its share.
const peakGain = 0.5

// observe folds in a request's latency; st.mu is held. The first answer
// sets the estimate (a failure sets at least ref). Then a latency above the
// estimate moves it halfway there at once (the peak); a lower one pulls the estimate towards
// it, by more the longer since the last update. A failure never lowers the
// estimate: fast failures must not attract traffic.
func (st *endpointState) observe(now int64, rtt float64, failed bool, decay, ref float64) {
	if !st.seen.Load() {
		if failed {
			rtt = max(rtt, ref)
		}
		st.rtt.Store(math.Float64bits(rtt))
		st.stamp.Store(now)
		st.seen.Store(true)
		return
	}
	w := 1.0
	if el := now - st.stamp.Load(); el > 0 {
		w = math.Exp(-float64(el) / decay)
	}
	cur := ref + (math.Float64frombits(st.rtt.Load())-ref)*w
	next := cur
	switch {
	case rtt > cur:
		next = cur + (rtt-cur)*peakGain
	case !failed:
		next = cur*w + rtt*(1-w)
	}
	st.rtt.Store(math.Float64bits(next))
	st.stamp.Store(max(now, st.stamp.Load()))
}
