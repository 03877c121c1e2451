package balance

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 8080)
}

func endpoints(weights ...uint32) []*Endpoint {
	eps := make([]*Endpoint, len(weights))
	for i, w := range weights {
		eps[i] = &Endpoint{Addr: addr(i + 1), Weight: w}
	}
	return eps
}

// newTestP2C returns a balancer on a fake clock with seeded randomness.
func newTestP2C(seed uint64, opts Options) (*P2C, *fakeClock) {
	clk := newFakeClock()
	opts.Now = clk.Now
	opts.Rand = rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	return NewP2C(opts), clk
}

func mustPick(t *testing.T, b *P2C) (*Endpoint, func(error)) {
	t.Helper()
	ep, done, err := b.Pick(context.Background())
	if err != nil {
		t.Fatalf("Pick: %v", err)
	}
	return ep, done
}

// pending is a simulated request in flight.
type pending struct {
	end  time.Time
	done func(error)
	err  error
}

type pendingHeap []pending

func (h pendingHeap) Len() int           { return len(h) }
func (h pendingHeap) Less(i, j int) bool { return h[i].end.Before(h[j].end) }
func (h pendingHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)        { *h = append(*h, x.(pending)) }
func (h *pendingHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// simulate sends n requests through b from clients concurrent virtual
// clients, each sending its next request when the previous one ends, in
// simulated time. latency gives a request's duration; it is varied by ±10%.
// It returns how many requests each address received.
func simulate(t *testing.T, b *P2C, clk *fakeClock, seed uint64, n, clients int, latency func(*Endpoint) time.Duration) map[netip.AddrPort]int {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	counts := make(map[netip.AddrPort]int)
	h := &pendingHeap{}
	start := func() {
		ep, done := mustPick(t, b)
		counts[ep.Addr]++
		base := float64(latency(ep))
		d := time.Duration(base * (0.9 + 0.2*rng.Float64()))
		heap.Push(h, pending{end: clk.Now().Add(d), done: done})
	}
	sent := 0
	for ; sent < clients && sent < n; sent++ {
		start()
	}
	for h.Len() > 0 {
		p := heap.Pop(h).(pending)
		clk.Set(p.end)
		p.done(p.err)
		if sent < n {
			start()
			sent++
		}
	}
	return counts
}

func TestP2CLatencyAware(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		clients   int
		latencies []time.Duration
		// share checks the fraction of requests each endpoint got.
		share func(i int, share float64) error
	}{
		{
			name:      "slow endpoint sequential",
			n:         3000,
			clients:   1,
			latencies: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond},
			share:     slowUnder(2, 0.20),
		},
		{
			name:      "slow endpoint concurrent",
			n:         3000,
			clients:   10,
			latencies: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond},
			share:     slowUnder(2, 0.20),
		},
		{
			name:      "slow endpoint very concurrent",
			n:         3000,
			clients:   50,
			latencies: []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, 10 * time.Millisecond},
			share:     slowUnder(1, 0.20),
		},
		{
			// One at a time, the endpoint with the lowest recent latency
			// peak wins for a while, so shares even out over a longer run.
			name:      "equal sequential",
			n:         10000,
			clients:   1,
			latencies: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond},
			share:     between(0.25, 0.42),
		},
		{
			name:      "equal concurrent",
			n:         3000,
			clients:   10,
			latencies: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond},
			share:     between(0.25, 0.42),
		},
		{
			name:      "equal very concurrent",
			n:         3000,
			clients:   50,
			latencies: []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond},
			share:     between(0.25, 0.42),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(3) {
				b, clk := newTestP2C(seed, Options{})
				eps := make([]*Endpoint, len(tt.latencies))
				lat := make(map[netip.AddrPort]time.Duration)
				for i, l := range tt.latencies {
					eps[i] = &Endpoint{Addr: addr(i + 1)}
					lat[eps[i].Addr] = l
				}
				b.Update(eps)
				n := tt.n
				counts := simulate(t, b, clk, seed, n, tt.clients, func(ep *Endpoint) time.Duration { return lat[ep.Addr] })
				total := 0
				for _, c := range counts {
					total += c
				}
				if total != n {
					t.Fatalf("seed %d: %d requests counted, want %d", seed, total, n)
				}
				for i, ep := range eps {
					if err := tt.share(i, float64(counts[ep.Addr])/float64(n)); err != nil {
						t.Errorf("seed %d: endpoint %d (%v): %v; counts %v", seed, i, lat[ep.Addr], err, counts)
					}
				}
				for _, s := range b.Stats() {
					if s.InFlight != 0 {
						t.Errorf("seed %d: %v has %d in flight after the run", seed, s.Addr, s.InFlight)
					}
				}
			}
		})
	}
}

func slowUnder(slow int, limit float64) func(int, float64) error {
	return func(i int, share float64) error {
		if i == slow && share >= limit {
			return fmt.Errorf("slow endpoint got %.3f of requests, want < %.2f", share, limit)
		}
		return nil
	}
}

func between(lo, hi float64) func(int, float64) error {
	return func(_ int, share float64) error {
		if share < lo || share > hi {
			return fmt.Errorf("got %.3f of requests, want %.2f..%.2f", share, lo, hi)
		}
		return nil
	}
}

func TestP2CWeights(t *testing.T) {
	const n = 6000
	tests := []struct {
		name    string
		weights []uint32
		clients int
		want    []float64 // expected shares, each checked ±0.08
	}{
		{"2:1", []uint32{2, 1}, 30, []float64{2.0 / 3, 1.0 / 3}},
		{"2:1 destination scale", []uint32{20000, 10000}, 30, []float64{2.0 / 3, 1.0 / 3}},
		{"default weight is 10000", []uint32{20000, 0}, 30, []float64{2.0 / 3, 1.0 / 3}},
		{"2:1:1", []uint32{2, 1, 1}, 30, []float64{0.5, 0.25, 0.25}},
		{"1:1", []uint32{5, 5}, 30, []float64{0.5, 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, clk := newTestP2C(7, Options{})
			eps := endpoints(tt.weights...)
			b.Update(eps)
			counts := simulate(t, b, clk, 7, n, tt.clients, func(*Endpoint) time.Duration { return 10 * time.Millisecond })
			for i, ep := range eps {
				got := float64(counts[ep.Addr]) / n
				if math.Abs(got-tt.want[i]) > 0.08 {
					t.Errorf("endpoint %d (weight %d): share %.3f, want %.3f±0.08; counts %v", i, tt.weights[i], got, tt.want[i], counts)
				}
			}
		})
	}
}

func TestDraw2(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
	}{
		{"uniform", []uint32{1, 1, 1, 1}},
		{"two", []uint32{3, 1}},
		{"weighted", []uint32{1, 2, 3, 4}},
		{"large weights", []uint32{math.MaxUint32, 1, math.MaxUint32 / 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewP2C(Options{})
			b.Update(endpoints(tt.weights...))
			s := b.set.Load()
			var total float64
			for _, w := range tt.weights {
				total += float64(w)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			const draws = 200000
			first := make([]int, len(tt.weights))
			either := make([]int, len(tt.weights))
			for range draws {
				i, j := s.draw2(rng.Uint64(), rng.Uint64())
				if i == j {
					t.Fatalf("draw2 returned the same entry twice: %d", i)
				}
				first[i]++
				either[i]++
				either[j]++
			}
			for i, w := range tt.weights {
				want := float64(w) / total
				if got := float64(first[i]) / draws; math.Abs(got-want) > 0.01 {
					t.Errorf("entry %d (weight %d) drawn first %.4f of the time, want %.4f", i, w, got, want)
				}
				// P(i in pair) = p_i + sum_{k != i} p_k * p_i / (1 - p_k).
				pin := want
				for k, wk := range tt.weights {
					if k != i {
						pk := float64(wk) / total
						pin += pk * want / (1 - pk)
					}
				}
				if got := float64(either[i]) / draws; math.Abs(got-pin) > 0.01 {
					t.Errorf("entry %d (weight %d) in the pair %.4f of the time, want %.4f", i, w, got, pin)
				}
			}
		})
	}
}

func TestEstimate(t *testing.T) {
	const decay = float64(10 * time.Second)
	ms := func(f float64) float64 { return f * float64(time.Millisecond) }
	e1 := math.Exp(-1)
	tests := []struct {
		name    string
		start   float64 // estimate stored at time 0; < 0: never answered
		ref     float64 // the balancer's reference latency
		elapsed time.Duration
		rtt     float64
		failed  bool
		before  float64 // estimate at elapsed, before observing rtt
		want    float64 // estimate after observing rtt
	}{
		{"first answer sets", -1, ms(5), time.Second, ms(50), false, ms(5), ms(50)},
		{"first failure sets at least the reference", -1, ms(5), time.Second, ms(1), true, ms(5), ms(5)},
		{"peak moves halfway at once", ms(10), ms(10), 0, ms(50), false, ms(10), ms(30)},
		{"lower without elapsed time is ignored", ms(50), ms(10), 0, ms(10), false, ms(50), ms(50)},
		{"lower pulls towards it over time", ms(50), 0, 10 * time.Second, ms(10),
			false, ms(50) * e1, ms(50)*e1*e1 + ms(10)*(1-e1)},
		{"unobserved moves towards the reference from above", ms(50), ms(10), 10 * time.Second, ms(20),
			false, ms(10) + ms(40)*e1, (ms(10)+ms(40)*e1)*e1 + ms(20)*(1-e1)},
		{"unobserved moves towards the reference from below", ms(1), ms(11), 10 * time.Second, ms(100),
			false, ms(11) - ms(10)*e1, (ms(11) - ms(10)*e1 + ms(100)) / 2},
		{"long idle makes a higher sample a peak", ms(50), 0, 40 * time.Second, ms(10), false, ms(50) * math.Exp(-4), (ms(50)*math.Exp(-4) + ms(10)) / 2},
		{"failure never lowers", ms(50), 0, 10 * time.Second, ms(1), true, ms(50) * e1, ms(50) * e1},
		{"failure can raise", ms(10), ms(10), time.Second, ms(50), true, ms(10), ms(30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &endpointState{addr: addr(1)}
			if tt.start >= 0 {
				st.observe(0, tt.start, false, decay, tt.ref)
			}
			now := int64(tt.elapsed)
			if got := st.estimate(now, decay, tt.ref); math.Abs(got-tt.before) > 1 {
				t.Errorf("estimate before observing = %v, want %v", time.Duration(got), time.Duration(tt.before))
			}
			st.observe(now, tt.rtt, tt.failed, decay, tt.ref)
			if got := st.estimate(now, decay, tt.ref); math.Abs(got-tt.want) > 1 {
				t.Errorf("estimate = %v, want %v", time.Duration(got), time.Duration(tt.want))
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	b := NewP2C(Options{MinBackoff: time.Second, MaxBackoff: time.Minute})
	tests := []struct {
		n      int
		jitter float64
		want   time.Duration
	}{
		{0, 0, time.Second},
		{1, 0, 2 * time.Second},
		{5, 0, 32 * time.Second},
		{6, 0, time.Minute},
		{100, 0, time.Minute},
		{0, 0.5, 1500 * time.Millisecond},
		{3, 0.25, 10 * time.Second},
		{5, 0.5, 48 * time.Second},
		{6, 0.5, time.Minute},
	}
	for _, tt := range tests {
		if got := time.Duration(b.backoff(tt.n, tt.jitter)); got != tt.want {
			t.Errorf("backoff(%d, %v) = %v, want %v", tt.n, tt.jitter, got, tt.want)
		}
	}
}

func TestP2CNoEndpoints(t *testing.T) {
	b := NewP2C(Options{})
	if _, _, err := b.Pick(context.Background()); !errors.Is(err, ErrNoEndpoints) {
		t.Fatalf("Pick on a new balancer: err = %v, want ErrNoEndpoints", err)
	}
	b.Update(endpoints(0))
	if b.Len() != 1 {
		t.Fatalf("Len = %d, want 1", b.Len())
	}
	ep, done := mustPick(t, b)
	if ep.Addr != addr(1) {
		t.Fatalf("picked %v, want %v", ep.Addr, addr(1))
	}
	done(nil)
	b.Update(nil)
	if _, _, err := b.Pick(context.Background()); !errors.Is(err, ErrNoEndpoints) {
		t.Fatalf("Pick after Update(nil): err = %v, want ErrNoEndpoints", err)
	}
	if b.Len() != 0 {
		t.Fatalf("Len = %d, want 0", b.Len())
	}
}

var errBoom = errors.New("boom")

type accrualEvents struct {
	mu       sync.Mutex
	ejects   []time.Duration
	restores int
}

func (a *accrualEvents) counts() (int, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.ejects), a.restores
}

func TestP2CFailureAccrual(t *testing.T) {
	ev := &accrualEvents{}
	var b *P2C
	opts := Options{
		Jitter: -1, // exact backoffs
		OnEject: func(a netip.AddrPort, d time.Duration) {
			_ = b.Stats() // callbacks run without locks held
			ev.mu.Lock()
			ev.ejects = append(ev.ejects, d)
			ev.mu.Unlock()
		},
		OnRestore: func(netip.AddrPort) {
			ev.mu.Lock()
			ev.restores++
			ev.mu.Unlock()
		},
	}
	b, clk := newTestP2C(3, opts)
	eps := endpoints(0, 0, 0)
	bad := eps[0].Addr
	b.Update(eps)

	// send sends one request, failing it when it goes to bad and badFails.
	badFails := true
	badPicks := 0
	send := func() {
		t.Helper()
		ep, done := mustPick(t, b)
		clk.Advance(5 * time.Millisecond)
		var err error
		if ep.Addr == bad {
			badPicks++
			if badFails {
				err = errBoom
			}
		}
		done(err)
	}
	statsOf := func(a netip.AddrPort) EndpointStats {
		for _, s := range b.Stats() {
			if s.Addr == a {
				return s
			}
		}
		t.Fatalf("no stats for %v", a)
		return EndpointStats{}
	}

	// Ejected after exactly 7 consecutive failures.
	for i := 0; i < 10000 && badPicks < 7; i++ {
		if s := statsOf(bad); s.Ejected {
			t.Fatalf("ejected after %d failures", badPicks)
		}
		send()
	}
	if badPicks != 7 {
		t.Fatalf("bad endpoint picked %d times, want 7", badPicks)
	}
	if s := statsOf(bad); !s.Ejected || s.Probing {
		t.Fatalf("after 7 failures: stats %+v, want ejected and not probing", s)
	}
	if n, _ := ev.counts(); n != 1 || ev.ejects[0] != time.Second {
		t.Fatalf("ejections %v, want [1s]", ev.ejects)
	}

	// No traffic during the backoff: 190 requests × 5ms < 1s.
	badPicks = 0
	for range 190 {
		send()
	}
	if badPicks != 0 {
		t.Fatalf("ejected endpoint picked %d times during its backoff", badPicks)
	}

	// After the backoff exactly one probe goes through while it is in flight.
	clk.Advance(time.Second)
	probe := pickUntil(t, b, bad, 100)
	if s := statsOf(bad); !s.Probing || !s.Ejected {
		t.Fatalf("probe in flight: stats %+v, want probing", s)
	}
	badPicks = 0
	for range 100 {
		send()
	}
	if badPicks != 0 {
		t.Fatalf("endpoint picked %d times while its probe was in flight", badPicks)
	}

	// A failed probe ejects again, for twice as long.
	probe(errBoom)
	if n, _ := ev.counts(); n != 2 || ev.ejects[1] != 2*time.Second {
		t.Fatalf("ejections %v, want [1s 2s]", ev.ejects)
	}
	clk.Advance(1900 * time.Millisecond)
	for range 10 {
		send()
	}
	if badPicks != 0 {
		t.Fatalf("endpoint picked %d times during its second backoff", badPicks)
	}
	clk.Advance(100 * time.Millisecond)

	// A successful probe restores it.
	probe = pickUntil(t, b, bad, 100)
	probe(nil)
	if _, r := ev.counts(); r != 1 {
		t.Fatalf("restores = %d, want 1", r)
	}
	if s := statsOf(bad); s.Ejected || s.Probing || s.ConsecutiveFailures != 0 {
		t.Fatalf("after a successful probe: stats %+v, want healthy", s)
	}
	badFails = false
	badPicks = 0
	for range 3000 {
		send()
	}
	if badPicks == 0 {
		t.Fatalf("restored endpoint got no traffic")
	}

	// The backoff starts over after a restore.
	badFails = true
	badPicks = 0
	for i := 0; i < 10000 && badPicks < 7; i++ {
		send()
	}
	if n, _ := ev.counts(); n != 3 || ev.ejects[2] != time.Second {
		t.Fatalf("ejections %v, want [1s 2s 1s]", ev.ejects)
	}
}

// pickUntil picks (finishing other picks successfully) until it gets want,
// and returns that pick's done.
func pickUntil(t *testing.T, b *P2C, want netip.AddrPort, tries int) func(error) {
	t.Helper()
	for range tries {
		ep, done := mustPick(t, b)
		if ep.Addr == want {
			return done
		}
		done(nil)
	}
	t.Fatalf("%v not picked in %d tries", want, tries)
	return nil
}

func TestP2CSuccessResetsFailures(t *testing.T) {
	b, _ := newTestP2C(1, Options{FailureThreshold: 3})
	b.Update(endpoints(0))
	for _, err := range []error{errBoom, errBoom, nil, errBoom, errBoom, nil, errBoom, errBoom} {
		_, done := mustPick(t, b)
		done(err)
	}
	if s := b.Stats()[0]; s.Ejected || s.ConsecutiveFailures != 2 {
		t.Fatalf("stats %+v, want not ejected with 2 consecutive failures", s)
	}
	_, done := mustPick(t, b)
	done(errBoom)
	if s := b.Stats()[0]; !s.Ejected {
		t.Fatalf("stats %+v, want ejected after 3 consecutive failures", s)
	}
}

func TestP2CLateResultsIgnored(t *testing.T) {
	b, clk := newTestP2C(1, Options{FailureThreshold: 2, Jitter: -1})
	b.Update(endpoints(0))
	_, late := mustPick(t, b)
	for range 2 {
		_, done := mustPick(t, b)
		done(errBoom)
	}
	late(nil) // picked before the ejection: must not restore
	if s := b.Stats()[0]; !s.Ejected {
		t.Fatalf("a late success restored the endpoint: %+v", s)
	}
	clk.Advance(time.Second)
	_, probe := mustPick(t, b)
	if s := b.Stats()[0]; !s.Probing {
		t.Fatalf("stats %+v, want probing", s)
	}
	probe(nil)
	if s := b.Stats()[0]; s.Ejected {
		t.Fatalf("stats %+v after a successful probe, want healthy", s)
	}
}

func TestP2CFailureAccrualDisabled(t *testing.T) {
	b, _ := newTestP2C(1, Options{FailureThreshold: -1})
	b.Update(endpoints(0, 0))
	for range 100 {
		_, done := mustPick(t, b)
		done(errBoom)
	}
	for _, s := range b.Stats() {
		if s.Ejected {
			t.Fatalf("ejected with failure accrual disabled: %+v", s)
		}
	}
}

func TestP2CAllEjected(t *testing.T) {
	tests := []struct {
		name      string
		endpoints int
	}{
		{"single", 1},
		{"two", 2},
		{"many", 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, clk := newTestP2C(5, Options{Jitter: -1})
			b.Update(endpoints(make([]uint32, tt.endpoints)...))
			for i := 0; i < 7*tt.endpoints; i++ {
				_, done := mustPick(t, b)
				done(errBoom)
			}
			for _, s := range b.Stats() {
				if !s.Ejected {
					t.Fatalf("%v not ejected after %d failures in all", s.Addr, 7*tt.endpoints)
				}
			}
			if _, _, err := b.Pick(context.Background()); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("all ejected: err = %v, want ErrUnavailable", err)
			}
			// After the backoff each endpoint gets exactly one probe.
			clk.Advance(time.Second)
			probes := make(map[netip.AddrPort]func(error))
			for range tt.endpoints {
				ep, done := mustPick(t, b)
				if _, dup := probes[ep.Addr]; dup {
					t.Fatalf("%v probed twice", ep.Addr)
				}
				probes[ep.Addr] = done
			}
			if _, _, err := b.Pick(context.Background()); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("all probing: err = %v, want ErrUnavailable", err)
			}
			for _, done := range probes {
				done(nil)
			}
			ep, done := mustPick(t, b)
			done(nil)
			if _, ok := probes[ep.Addr]; !ok {
				t.Fatalf("picked unknown endpoint %v", ep.Addr)
			}
		})
	}
}

func TestP2CUpdate(t *testing.T) {
	b, clk := newTestP2C(9, Options{})
	a, bb, c, d := &Endpoint{Addr: addr(1)}, &Endpoint{Addr: addr(2)}, &Endpoint{Addr: addr(3)}, &Endpoint{Addr: addr(4)}
	b.Update([]*Endpoint{a, bb, c})

	// Give every endpoint a distinctive estimate, a failure, and one request
	// in flight.
	inflight := make(map[netip.AddrPort]func(error))
	for range 1000 {
		if len(inflight) == 3 {
			break
		}
		ep, done := mustPick(t, b)
		if _, ok := inflight[ep.Addr]; ok {
			done(nil)
			continue
		}
		clk.Advance(time.Duration(ep.Addr.Addr().As4()[3]) * 100 * time.Millisecond)
		done(errBoom)
		_, again := mustPick(t, b)
		inflight[ep.Addr] = again
	}
	if len(inflight) != 3 {
		t.Fatalf("only %d endpoints picked", len(inflight))
	}
	before := statsByAddr(b.Stats())

	bb2 := &Endpoint{Addr: addr(2), Weight: 5, Identity: "b.ns.serviceaccount.identity.linkerd.cluster.local"}
	b.Update([]*Endpoint{bb2, nil, c, d, d})
	if b.Len() != 3 {
		t.Fatalf("Len = %d, want 3", b.Len())
	}
	after := statsByAddr(b.Stats())
	if _, ok := after[a.Addr]; ok {
		t.Errorf("removed endpoint %v still has stats", a.Addr)
	}
	for _, ep := range []*Endpoint{bb, c} {
		got, want := after[ep.Addr], before[ep.Addr]
		want.Weight = got.Weight
		if got != want {
			t.Errorf("%v: stats %+v after update, want %+v", ep.Addr, got, want)
		}
	}
	if got := after[bb.Addr].Weight; got != 5 {
		t.Errorf("updated weight = %d, want 5", got)
	}
	if got := after[d.Addr]; got.EWMA != time.Duration(b.reference()) || got.InFlight != 0 || got.ConsecutiveFailures != 0 || got.Weight != DefaultWeight {
		t.Errorf("new endpoint stats %+v, want defaults (estimated at the reference %v)", got, time.Duration(b.reference()))
	}
	// The picked Endpoint is the updated value.
	for range 100 {
		ep, done := mustPick(t, b)
		done(nil)
		if ep.Addr == bb.Addr && ep != bb2 {
			t.Fatalf("picked the stale endpoint value for %v", bb.Addr)
		}
		if ep.Addr == a.Addr {
			t.Fatalf("picked removed endpoint %v", a.Addr)
		}
	}
	// Requests to removed endpoints finish without trouble.
	for _, done := range inflight {
		done(nil)
	}
	for _, s := range b.Stats() {
		if s.InFlight != 0 {
			t.Errorf("%v: %d in flight, want 0", s.Addr, s.InFlight)
		}
	}
}

func statsByAddr(stats []EndpointStats) map[netip.AddrPort]EndpointStats {
	m := make(map[netip.AddrPort]EndpointStats, len(stats))
	for _, s := range stats {
		m[s.Addr] = s
	}
	return m
}

func TestP2CDoneTwice(t *testing.T) {
	b, _ := newTestP2C(1, Options{})
	b.Update(endpoints(0))
	_, done := mustPick(t, b)
	done(nil)
	done(nil) // misuse, before the call is reused: ignored
	if s := b.Stats()[0]; s.InFlight != 0 {
		t.Fatalf("in flight = %d after a double done, want 0", s.InFlight)
	}
}

func TestP2CConcurrent(t *testing.T) {
	b := NewP2C(Options{FailureThreshold: 3, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	all := endpoints(1, 2, 3, 0, 0, 0, 7, 8)
	b.Update(all)
	const (
		workers = 8
		picks   = 2000
	)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b.Update(all[i%3 : 3+i%5])
			_ = b.Stats()
			time.Sleep(100 * time.Microsecond)
		}
	})
	var pickers sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		pickers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 0))
			for range picks {
				ep, done, err := b.Pick(context.Background())
				if errors.Is(err, ErrUnavailable) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if ep == nil {
					errs <- errors.New("nil endpoint without error")
					return
				}
				var derr error
				if ep.Addr == addr(1) || rng.IntN(10) == 0 {
					derr = errBoom
				}
				done(derr)
			}
		})
	}
	pickers.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b.Update(all)
	for _, s := range b.Stats() {
		if s.InFlight != 0 {
			t.Errorf("%v: %d in flight after all requests ended", s.Addr, s.InFlight)
		}
	}
}

func TestP2CPickAllocs(t *testing.T) {
	b := NewP2C(Options{})
	b.Update(endpoints(1, 2, 3))
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		_, done, err := b.Pick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
	})
	// The race detector makes sync.Pool drop items at random.
	if limit := map[bool]float64{false: 0, true: 1}[raceEnabled]; allocs > limit {
		t.Fatalf("Pick+done allocates %v times, want <= %v", allocs, limit)
	}
}

// BenchmarkP2CPick measures a pick and its done call, the balancer's part
// of a request's cost; Single (forwarding to one original destination) is
// the baseline.
func BenchmarkP2CPick(b *testing.B) {
	b.Run("single", func(b *testing.B) {
		bal := Single{Endpoint: &Endpoint{Addr: netip.MustParseAddrPort("10.0.0.1:80")}}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, done, err := bal.Pick(ctx)
			if err != nil {
				b.Fatal(err)
			}
			done(nil)
		}
	})
	for _, alg := range []Algorithm{PeakEWMA, LeastRequest, RoundRobin} {
		benchmarkPick(b, alg)
	}
}

func benchmarkPick(b *testing.B, alg Algorithm) {
	b.Helper()
	for _, n := range []int{1, 3, 100} {
		bal := NewP2C(Options{Algorithm: alg})
		eps := make([]*Endpoint, n)
		for i := range eps {
			eps[i] = &Endpoint{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 80)}
		}
		bal.Update(eps)
		ctx := context.Background()
		prefix := alg.String() + "/"
		b.Run(prefix+fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, done, err := bal.Pick(ctx)
				if err != nil {
					b.Fatal(err)
				}
				done(nil)
			}
		})
		b.Run(prefix+fmt.Sprintf("endpoints=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, done, err := bal.Pick(ctx)
					if err != nil {
						b.Fatal(err)
					}
					done(nil)
				}
			})
		})
	}
}
