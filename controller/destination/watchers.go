package destination

import (
	"context"
	"sync"

	"github.com/linkerd-go/linkerd/controller/store"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
)

// registry holds one watcher per target with subscribers, and the index
// from store keys to the watchers computed from them. One mutex guards it
// all: resolution reads an in-memory cache and publishing never blocks, so
// critical sections are short.
type registry struct {
	resolver  *resolver
	queueSize int
	metrics   *metrics

	mu       sync.Mutex
	watchers map[target]*watcher
	deps     map[store.Key]map[*watcher]struct{}
}

// watcher is the shared state of one target.
type watcher struct {
	target target
	state  *snapshot
	deps   []store.Key
	subs   map[*subscriber]struct{}
}

// transition is one change of a watcher's state: the updates that describe
// it and the state after it.
type transition struct {
	updates []*destinationv1.Update
	state   *snapshot
}

// subscriber is one stream's view of a watcher. The watcher queues
// transitions without blocking; when the queue is full the subscriber is
// marked overflowed and kicked, and from then on skipped until it catches
// up by diffing what it last sent against the watcher's current state.
type subscriber struct {
	reg   *registry
	w     *watcher
	queue chan transition
	kick  chan struct{}
	// overflowed is guarded by reg.mu.
	overflowed bool
	// sent is the state the client has been told about (nil: nothing yet);
	// owned by the goroutine running run.
	sent *snapshot
}

func newRegistry(r *resolver, queueSize int, m *metrics) *registry {
	return &registry{
		resolver:  r,
		queueSize: queueSize,
		metrics:   m,
		watchers:  map[target]*watcher{},
		deps:      map[store.Key]map[*watcher]struct{}{},
	}
}

// subscribe returns a subscriber to t whose queue already holds the
// current state (an add of every endpoint, or no_endpoints).
func (reg *registry) subscribe(t target) *subscriber {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	w := reg.watchers[t]
	if w == nil {
		w = &watcher{target: t, subs: map[*subscriber]struct{}{}}
		state, deps := reg.resolver.resolve(t)
		w.state = state
		reg.setDeps(w, deps)
		reg.watchers[t] = w
		reg.metrics.watchers.Inc()
	}
	s := &subscriber{
		reg:   reg,
		w:     w,
		queue: make(chan transition, reg.queueSize),
		kick:  make(chan struct{}, 1),
	}
	s.queue <- transition{updates: diff(nil, w.state), state: w.state}
	w.subs[s] = struct{}{}
	reg.metrics.subscribers.Inc()
	return s
}

// unsubscribe removes s; the watcher goes when its last subscriber does.
func (reg *registry) unsubscribe(s *subscriber) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	w := s.w
	if _, ok := w.subs[s]; !ok {
		return
	}
	delete(w.subs, s)
	reg.metrics.subscribers.Dec()
	if len(w.subs) == 0 {
		reg.setDeps(w, nil)
		delete(reg.watchers, w.target)
		reg.metrics.watchers.Dec()
	}
}

// setDeps replaces w's dependencies in the index.
func (reg *registry) setDeps(w *watcher, deps []store.Key) {
	for _, k := range w.deps {
		if set := reg.deps[k]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(reg.deps, k)
			}
		}
	}
	w.deps = deps
	for _, k := range deps {
		set := reg.deps[k]
		if set == nil {
			set = map[*watcher]struct{}{}
			reg.deps[k] = set
		}
		set[w] = struct{}{}
	}
}

// refresh recomputes the watchers that depend on any of keys and publishes
// their changes.
func (reg *registry) refresh(keys ...store.Key) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	seen := map[*watcher]struct{}{}
	for _, k := range keys {
		for w := range reg.deps[k] {
			if _, ok := seen[w]; ok {
				continue
			}
			seen[w] = struct{}{}
			reg.refreshLocked(w)
		}
	}
}

func (reg *registry) refreshLocked(w *watcher) {
	state, deps := reg.resolver.resolve(w.target)
	reg.setDeps(w, deps)
	ups := diff(w.state, state)
	w.state = state
	if len(ups) == 0 {
		return
	}
	tr := transition{updates: ups, state: state}
	for s := range w.subs {
		if s.overflowed {
			continue
		}
		select {
		case s.queue <- tr:
		default:
			s.overflowed = true
			reg.metrics.overflows.Inc()
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	}
}

// catchUp is called by an overflowed subscriber: it discards the queued
// transitions and returns the watcher's current state, from which queueing
// resumes.
func (reg *registry) catchUp(s *subscriber) *snapshot {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	// Only this subscriber's goroutine receives, and publishers hold the lock.
	for len(s.queue) > 0 {
		<-s.queue
	}
	s.overflowed = false
	return s.w.state
}

// run sends s's updates with send until ctx is done or send fails.
func (s *subscriber) run(ctx context.Context, send func(*destinationv1.Update) error) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case tr := <-s.queue:
			if err := s.sendAll(tr.updates, send); err != nil {
				return err
			}
			s.sent = tr.state
		case <-s.kick:
			state := s.reg.catchUp(s)
			if err := s.sendAll(diff(s.sent, state), send); err != nil {
				return err
			}
			s.sent = state
		}
	}
}

func (s *subscriber) sendAll(ups []*destinationv1.Update, send func(*destinationv1.Update) error) error {
	for _, u := range ups {
		if err := send(u); err != nil {
			return err
		}
		s.reg.metrics.countUpdate(u)
	}
	return nil
}
