package route

import (
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// withdrawAll withdraws until the budget refuses, returning how many
// retries it allowed (bounded, to catch a budget that never ends).
func withdrawAll(b *Budget) int {
	n := 0
	for n < 100000 && b.Withdraw() {
		n++
	}
	return n
}

func TestBudget(t *testing.T) {
	tests := []struct {
		name string
		p    BudgetParams
		// steps: deposit reqs requests, then advance, then count what can be withdrawn.
		steps []struct {
			reqs    int
			advance time.Duration
			want    int
		}
	}{{
		name: "ratio only",
		p:    BudgetParams{RetryRatio: 0.2, MinRetriesPerSecond: 0, TTL: 10 * time.Second},
		steps: []struct {
			reqs    int
			advance time.Duration
			want    int
		}{
			{100, 0, 20},            // 20% of 100
			{50, 0, 10},             // 150 requests: 30 in all, 20 taken
			{0, 5 * time.Second, 0}, // still in the window
			{0, 6 * time.Second, 0}, // the requests expired, so did the retries: nothing deposited since
			{10, 0, 2},
		},
	}, {
		name: "minimum per second over the TTL",
		p:    BudgetParams{RetryRatio: 0.2, MinRetriesPerSecond: 10, TTL: 10 * time.Second},
		steps: []struct {
			reqs    int
			advance time.Duration
			want    int
		}{
			{0, 0, 100},               // 10/s × 10 s
			{100, 0, 20},              // the ratio on top
			{0, 9 * time.Second, 0},   // the window still holds the 120 retries
			{0, 2 * time.Second, 100}, // all expired: the minimum again
		},
	}, {
		name: "ratio zero, minimum one",
		p:    BudgetParams{RetryRatio: 0, MinRetriesPerSecond: 1, TTL: time.Second},
		steps: []struct {
			reqs    int
			advance time.Duration
			want    int
		}{
			{1000, 0, 1},
			{0, 500 * time.Millisecond, 0},
			{0, 600 * time.Millisecond, 1},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1000, 0)}
			b := NewBudget(tc.p, clock.now)
			for i, s := range tc.steps {
				for range s.reqs {
					b.Deposit()
				}
				clock.advance(s.advance)
				if got := withdrawAll(b); got != s.want {
					t.Errorf("step %d: %d retries allowed, want %d", i, got, s.want)
				}
			}
		})
	}
}
