package store

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// Memory is a Store whose content is set by its methods: the base of Local,
// and a test double. Handlers are called synchronously, after the change is
// visible to readers, from the goroutine that made the change.
type Memory struct {
	indexedReader
	handlers handlers
	synced   atomic.Bool

	mu      sync.Mutex // serializes changes
	current map[Key]metav1.Object
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store. It reports HasSynced once Run starts
// (or MarkSynced is called).
func NewMemory() *Memory {
	return &Memory{
		indexedReader: indexedReader{
			services:    cache.NewIndexer(cache.MetaNamespaceKeyFunc, serviceIndexers()),
			slices:      cache.NewIndexer(cache.MetaNamespaceKeyFunc, endpointSliceIndexers()),
			pods:        cache.NewIndexer(cache.MetaNamespaceKeyFunc, podIndexers()),
			profiles:    cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}),
			routeReader: newRouteIndexers(),
		},
		current: map[Key]metav1.Object{},
	}
}

// AddHandler implements Store.
func (m *Memory) AddHandler(h Handler) { m.handlers.add(h) }

// Run implements Store: the content only changes through the methods, so
// Run marks the store synced and waits for ctx.
func (m *Memory) Run(ctx context.Context) error {
	m.MarkSynced()
	<-ctx.Done()
	return nil
}

// MarkSynced makes HasSynced true.
func (m *Memory) MarkSynced() { m.synced.Store(true) }

// HasSynced implements Store.
func (m *Memory) HasSynced() bool { return m.synced.Load() }

// Apply adds or replaces objects (*corev1.Service,
// *discoveryv1.EndpointSlice, *corev1.Pod, *spv1alpha2.ServiceProfile,
// *split.TrafficSplit or *policy.HTTPRoute; others are ignored). Pods are
// stored stripped, as the Kubernetes store does. An object equal to the
// stored one causes no event.
func (m *Memory) Apply(objs ...metav1.Object) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var events []Event
	for _, obj := range objs {
		if ev, ok := m.set(obj); ok {
			events = append(events, ev)
		}
	}
	m.dispatch(events)
}

// Delete removes the objects with the given keys; unknown keys are ignored.
func (m *Memory) Delete(keys ...Key) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var events []Event
	for _, k := range keys {
		if ev, ok := m.remove(k); ok {
			events = append(events, ev)
		}
	}
	m.dispatch(events)
}

// Replace makes objs the whole content: objects not in objs are deleted.
// Events come after all the changes, deletions first, then additions and
// updates, each in key order.
func (m *Memory) Replace(objs []metav1.Object) {
	m.mu.Lock()
	defer m.mu.Unlock()
	desired := make(map[Key]bool, len(objs))
	for _, obj := range objs {
		desired[objectKey(obj)] = true
	}
	var dels []Key
	for k := range m.current {
		if !desired[k] {
			dels = append(dels, k)
		}
	}
	slices.SortFunc(dels, compareKeys)
	var events []Event
	for _, k := range dels {
		if ev, ok := m.remove(k); ok {
			events = append(events, ev)
		}
	}
	sorted := slices.Clone(objs)
	slices.SortStableFunc(sorted, func(a, b metav1.Object) int { return compareKeys(objectKey(a), objectKey(b)) })
	for _, obj := range sorted {
		if ev, ok := m.set(obj); ok {
			events = append(events, ev)
		}
	}
	m.dispatch(events)
}

func (m *Memory) set(obj metav1.Object) (Event, bool) {
	k := objectKey(obj)
	if k.Kind == "" {
		return Event{}, false
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		obj = StripPod(pod)
	}
	idx := m.indexer(k.Kind)
	old, exists := m.current[k]
	if exists && reflect.DeepEqual(old, obj) {
		return Event{}, false
	}
	m.current[k] = obj
	if exists {
		_ = idx.Update(obj) // errors only come from the key function, which cannot fail here
		return Event{Type: Updated, Kind: k.Kind, Object: obj, Old: old}, true
	}
	_ = idx.Add(obj)
	return Event{Type: Added, Kind: k.Kind, Object: obj}, true
}

func (m *Memory) remove(k Key) (Event, bool) {
	old, ok := m.current[k]
	if !ok {
		return Event{}, false
	}
	delete(m.current, k)
	_ = m.indexer(k.Kind).Delete(old)
	return Event{Type: Deleted, Kind: k.Kind, Object: old}, true
}

// dispatch delivers events; the lock serializes deliveries so handlers see
// changes in order.
func (m *Memory) dispatch(events []Event) {
	for _, ev := range events {
		m.handlers.dispatch(ev)
	}
}

func (m *Memory) indexer(k Kind) cache.Indexer {
	switch k {
	case KindService:
		return m.services
	case KindEndpointSlice:
		return m.slices
	case KindServiceProfile:
		return m.profiles
	case KindTrafficSplit:
		return m.splits
	case KindHTTPRoute:
		return m.routes
	case KindGatewayHTTPRoute:
		return m.gatewayRoutes
	default:
		return m.pods
	}
}

func objectKey(obj metav1.Object) Key {
	return Key{Kind: kindOf(obj), Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

func compareKeys(a, b Key) int {
	return strings.Compare(a.String(), b.String())
}
