package route

import (
	"sync"
	"time"
)

// BudgetParams are a ServiceProfile's retryBudget.
type BudgetParams struct {
	// RetryRatio is the retries allowed per original request.
	RetryRatio float64
	// MinRetriesPerSecond are allowed on top of the ratio.
	MinRetriesPerSecond int
	// TTL is the window requests and retries are counted over.
	TTL time.Duration
}

// DefaultBudget is Linkerd's budget for profiles without one.
var DefaultBudget = BudgetParams{RetryRatio: 0.2, MinRetriesPerSecond: 10, TTL: 10 * time.Second}

// budgetSlots is the number of slots the TTL is divided into.
const budgetSlots = 10

// Budget bounds retries: over the last TTL, at most
// MinRetriesPerSecond×TTL + RetryRatio×(original requests) retries. Counts
// are kept in slots of TTL/10 that expire as the window slides. It is safe
// for concurrent use.
type Budget struct {
	p    BudgetParams
	now  func() time.Time
	slot time.Duration

	mu      sync.Mutex
	origin  time.Time
	epoch   int64 // the slot index of the newest slot
	reqs    [budgetSlots]int64
	retries [budgetSlots]int64
}

// NewBudget returns a budget; now is the clock (time.Now when nil). A TTL
// of 0 takes DefaultBudget's.
func NewBudget(p BudgetParams, now func() time.Time) *Budget {
	if p.TTL <= 0 {
		p.TTL = DefaultBudget.TTL
	}
	if now == nil {
		now = time.Now
	}
	return &Budget{p: p, now: now, slot: p.TTL / budgetSlots, origin: now()}
}

// advance expires the slots older than the TTL; mu is held.
func (b *Budget) advance() int {
	e := int64(b.now().Sub(b.origin) / b.slot)
	for n := 0; b.epoch < e && n < budgetSlots; n++ {
		b.epoch++
		i := b.epoch % budgetSlots
		b.reqs[i], b.retries[i] = 0, 0
	}
	b.epoch = max(b.epoch, e)
	return int(b.epoch % budgetSlots)
}

// Deposit counts one original request.
func (b *Budget) Deposit() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reqs[b.advance()]++
}

// Withdraw takes one retry from the budget; false when it is spent.
func (b *Budget) Withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.advance()
	var reqs, retries int64
	for j := range budgetSlots {
		reqs += b.reqs[j]
		retries += b.retries[j]
	}
	allowed := float64(b.p.MinRetriesPerSecond)*b.p.TTL.Seconds() + b.p.RetryRatio*float64(reqs)
	if float64(retries)+1 > allowed {
		return false
	}
	b.retries[i]++
	return true
}
