package destination

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testkit"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// clientModel applies updates as a proxy would and renders the result.
type clientModel struct {
	mu      sync.Mutex
	known   bool // at least one update seen
	exists  bool
	eps     map[string]string
	applied int
}

func (m *clientModel) apply(u *destinationv1.Update) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.eps == nil {
		m.eps = map[string]string{}
	}
	m.known = true
	m.applied++
	switch k := u.Kind.(type) {
	case *destinationv1.Update_Add:
		m.exists = true
		for _, ep := range k.Add.GetEndpoints() {
			m.eps[formatAddr(ep.GetAddr())] = formatLabels(k.Add.GetMetricLabels()) + " " + formatEndpoint(ep)
		}
	case *destinationv1.Update_Remove:
		for _, a := range k.Remove.GetAddrs() {
			delete(m.eps, formatAddr(a))
		}
	case *destinationv1.Update_NoEndpoints:
		m.exists = k.NoEndpoints.GetExists()
		clear(m.eps)
	}
}

// String renders the model: "exists=<bool>" then one line per endpoint.
func (m *clientModel) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.known {
		return "nothing"
	}
	lines := []string{fmt.Sprintf("exists=%t", m.exists)}
	for _, k := range slices.Sorted(maps.Keys(m.eps)) {
		lines = append(lines, m.eps[k])
	}
	return strings.Join(lines, "\n")
}

// webSlice returns web's slice with n endpoints 10.42.<gen>.1.. on port 8080.
func webSlice(gen, n int) *discoveryv1.EndpointSlice {
	var eps []discoveryv1.Endpoint
	for i := 1; i <= n; i++ {
		eps = append(eps, newEp(fmt.Sprintf("10.42.%d.%d", gen, i), ""))
	}
	return newSlice("web-a", "web", slicePorts("http=8080"), eps...)
}

// TestSlowSubscriberIsCoalesced: a subscriber that does not read is never
// waited for; the other one gets every change; the slow one, once it reads,
// converges to the current state with a coalesced diff and then gets
// changes one by one again.
func TestSlowSubscriberIsCoalesced(t *testing.T) {
	h := newHarness(t, Config{SubscriberQueue: 2})
	h.apply(newSvc("web", "10.96.0.10", svcPort("http", 80, intstr.FromString("http"))), webSlice(0, 3))
	const authority = "web.ns.svc.cluster.local:80"
	fast := h.subscribe(authority)
	slow := h.subscribe(authority)
	fastModel := &clientModel{}

	drainInto := func(sub *subscriber, m *clientModel) int {
		n := 0
		for {
			select {
			case tr := <-sub.queue:
				for _, u := range tr.updates {
					m.apply(u)
				}
				sub.sent = tr.state
				n++
			default:
				return n
			}
		}
	}
	if n := drainInto(fast, fastModel); n != 1 {
		t.Fatalf("fast subscriber: %d initial transitions, want 1", n)
	}

	const changes = 10
	for gen := 1; gen <= changes; gen++ {
		h.apply(webSlice(gen, 3))
		// The fast subscriber has exactly this change queued, however far
		// behind the slow one is.
		if n := drainInto(fast, fastModel); n != 1 {
			t.Fatalf("change %d: fast subscriber got %d transitions, want 1", gen, n)
		}
		if want := currentModel(t, h, authority); fastModel.String() != want {
			t.Fatalf("change %d: fast subscriber model\n%s\nwant\n%s", gen, fastModel, want)
		}
	}
	if got := metricValue(t, h.s.metrics.overflows); got != 1 {
		t.Errorf("overflows = %v, want 1 (one episode, however many changes were skipped)", got)
	}
	if len(slow.queue) != 2 || len(slow.kick) != 1 {
		t.Fatalf("slow subscriber: queue %d, kick %d; want a full queue and a pending kick", len(slow.queue), len(slow.kick))
	}

	// The slow subscriber starts reading.
	slowModel := &clientModel{}
	sent := make(chan *destinationv1.Update, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- slow.run(ctx, func(u *destinationv1.Update) error {
			slowModel.apply(u)
			sent <- u
			return nil
		})
	}()
	defer func() {
		cancel()
		<-done
	}()
	want := currentModel(t, h, authority)
	testkit.EventuallyTrue(t, 10*time.Second, "slow subscriber converges", func() bool { return slowModel.String() == want })
	// At most: initial add, one queued change (remove+add), catch-up (remove+add).
	if n := len(sent); n > 5 {
		t.Errorf("slow subscriber got %d updates, want a coalesced few", n)
	}

	// Caught up, it is queued normally again.
	h.apply(webSlice(99, 1))
	want = currentModel(t, h, authority)
	testkit.EventuallyTrue(t, 10*time.Second, "slow subscriber gets the next change", func() bool { return slowModel.String() == want })
	if got := metricValue(t, h.s.metrics.overflows); got != 1 {
		t.Errorf("overflows = %v after catching up, want still 1", got)
	}
}

// currentModel renders what a new subscriber to authority is told first.
func currentModel(t *testing.T, h *harness, authority string) string {
	t.Helper()
	sub := h.subscribe(authority)
	defer h.s.reg.unsubscribe(sub)
	m := &clientModel{}
	tr := <-sub.queue
	for _, u := range tr.updates {
		m.apply(u)
	}
	return m.String()
}

// TestWatcherSharingAndRelease: subscribers of one target share a watcher,
// which goes with the last of them; other targets have their own.
func TestWatcherSharingAndRelease(t *testing.T) {
	h := newHarness(t, Config{})
	h.apply(newSvc("web", "10.96.0.10", svcPort("http", 80, intstr.FromString("http"))), webSlice(0, 1))
	a := h.subscribe("web.ns.svc.cluster.local:80")
	b := h.subscribe("web.ns.svc.cluster.local.:80")
	c := h.subscribe("web.ns.svc.cluster.local:81")
	if a.w != b.w || a.w == c.w {
		t.Fatal("watchers not shared per target")
	}
	if got := metricValue(t, h.s.metrics.watchers); got != 2 {
		t.Errorf("watchers gauge = %v, want 2", got)
	}
	h.s.reg.unsubscribe(a)
	h.s.reg.unsubscribe(a) // idempotent
	if _, ok := h.s.reg.watchers[b.w.target]; !ok {
		t.Fatal("watcher dropped while it still has a subscriber")
	}
	h.s.reg.unsubscribe(b)
	h.s.reg.unsubscribe(c)
	if len(h.s.reg.watchers) != 0 || len(h.s.reg.deps) != 0 {
		t.Errorf("left: %d watchers, %d deps", len(h.s.reg.watchers), len(h.s.reg.deps))
	}
	if got := metricValue(t, h.s.metrics.subscribers); got != 0 {
		t.Errorf("subscribers gauge = %v, want 0", got)
	}
	// Changes with no watchers are harmless.
	h.apply(webSlice(1, 2))
}
