// Package store is the control plane's view of the Kubernetes resources it
// serves from: Services, EndpointSlices and Pods.
//
// One interface, Store, has two implementations: Kube, fed by client-go
// shared informers from a cluster, and Local, fed by a directory of
// Kubernetes-style YAML files (the same resources written by hand or by
// `linkerd local apply`). Both keep the objects in client-go indexers and
// notify registered handlers of every add, update and delete, after the
// change is visible to readers.
//
// Objects returned by a Store are shared with the cache: callers must not
// modify them.
package store

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	spv1alpha2 "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
	"github.com/linkerd-go/linkerd/pkg/apis/split"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// Kind is the kind of a stored resource.
type Kind string

// The kinds a Store holds.
const (
	KindService       Kind = "Service"
	KindEndpointSlice Kind = "EndpointSlice"
	KindPod           Kind = "Pod"
	// KindServiceProfile is linkerd.io/v1alpha2 ServiceProfile.
	KindServiceProfile Kind = "ServiceProfile"
)

// Key names a resource.
type Key struct {
	Kind      Kind
	Namespace string
	Name      string
}

// String formats the key as "Kind/namespace/name".
func (k Key) String() string {
	return string(k.Kind) + "/" + k.Namespace + "/" + k.Name
}

// EventType says what happened to a resource.
type EventType int

// Event types.
const (
	Added EventType = iota
	Updated
	Deleted
)

// String returns "added", "updated" or "deleted".
func (t EventType) String() string {
	switch t {
	case Added:
		return "added"
	case Updated:
		return "updated"
	case Deleted:
		return "deleted"
	}
	return "unknown"
}

// Event is a change to one resource.
type Event struct {
	Type EventType
	Kind Kind
	// Object is the resource after the change; for Deleted, its last known
	// state. It is a *corev1.Service, *discoveryv1.EndpointSlice,
	// *corev1.Pod, *spv1alpha2.ServiceProfile, *split.TrafficSplit or
	// *policy.HTTPRoute, shared with the cache (read-only).
	Object metav1.Object
	// Old is the previous state for Updated events, nil otherwise.
	Old metav1.Object
}

// Key returns the key of the event's resource.
func (e Event) Key() Key {
	return Key{Kind: e.Kind, Namespace: e.Object.GetNamespace(), Name: e.Object.GetName()}
}

// Handler receives events. It is called from the store's goroutines and
// must return quickly: record what changed (e.g. enqueue a key) and do the
// work elsewhere.
type Handler func(Event)

// Reader answers queries about the current resources. It is safe for
// concurrent use.
type Reader interface {
	// Service returns the Service namespace/name.
	Service(namespace, name string) (*corev1.Service, bool)
	// ServicesByIP returns the Services whose cluster IPs include ip.
	ServicesByIP(ip netip.Addr) []*corev1.Service
	// EndpointSlices returns the EndpointSlices of Service namespace/name
	// (by their kubernetes.io/service-name label), sorted by name.
	EndpointSlices(namespace, service string) []*discoveryv1.EndpointSlice
	// Pod returns the Pod namespace/name.
	Pod(namespace, name string) (*corev1.Pod, bool)
	// PodsByIP returns the pods, other than host-network pods, whose pod
	// IPs include ip, sorted by namespace and name.
	PodsByIP(ip netip.Addr) []*corev1.Pod
	// ServiceProfile returns the ServiceProfile namespace/name, as stored
	// (not validated).
	ServiceProfile(namespace, name string) (*spv1alpha2.ServiceProfile, bool)
	// TrafficSplits returns the TrafficSplits of namespace, as stored (not
	// validated), sorted by name.
	TrafficSplits(namespace string) []*split.TrafficSplit
	// HTTPRoutesFor returns the HTTPRoutes (both groups) with Service
	// namespace/name as a parent, as stored (not validated).
	HTTPRoutesFor(namespace, service string) []*policy.HTTPRoute
}

// Store is a Reader kept up to date from a source, which notifies handlers
// of changes.
type Store interface {
	Reader
	// AddHandler registers h for every event. It must be called before Run;
	// the first events describe the initial state as additions.
	AddHandler(h Handler)
	// Run watches the source until ctx is done. It returns nil when ctx is
	// cancelled, or an error when the store could not start.
	Run(ctx context.Context) error
	// HasSynced reports whether the initial state has been loaded and its
	// events delivered to the handlers.
	HasSynced() bool
}

// Index names used on the indexers.
const (
	indexClusterIP = "clusterIP"
	indexService   = "service"
	indexPodIP     = "podIP"
)

func serviceIndexers() cache.Indexers {
	return cache.Indexers{
		indexClusterIP: func(obj any) ([]string, error) {
			svc, ok := obj.(*corev1.Service)
			if !ok {
				return nil, nil
			}
			ips := svc.Spec.ClusterIPs
			if len(ips) == 0 && svc.Spec.ClusterIP != "" {
				ips = []string{svc.Spec.ClusterIP}
			}
			return normalizeIPs(ips), nil
		},
	}
}

func endpointSliceIndexers() cache.Indexers {
	return cache.Indexers{
		indexService: func(obj any) ([]string, error) {
			es, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok {
				return nil, nil
			}
			svc := es.Labels[k8s.ServiceNameLabel]
			if svc == "" {
				return nil, nil
			}
			return []string{es.Namespace + "/" + svc}, nil
		},
	}
}

func podIndexers() cache.Indexers {
	return cache.Indexers{
		indexPodIP: func(obj any) ([]string, error) {
			pod, ok := obj.(*corev1.Pod)
			if !ok || pod.Spec.HostNetwork {
				return nil, nil
			}
			return normalizeIPs(podIPs(pod)), nil
		},
	}
}

func podIPs(pod *corev1.Pod) []string {
	ips := make([]string, 0, len(pod.Status.PodIPs)+1)
	for _, ip := range pod.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = append(ips, pod.Status.PodIP)
	}
	return ips
}

// normalizeIPs returns the canonical forms of the parseable IPs, so that
// lookups match however the API spelled them.
func normalizeIPs(ips []string) []string {
	var out []string
	for _, s := range ips {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			continue
		}
		out = append(out, a.Unmap().String())
	}
	return out
}

// indexedReader implements Reader over three indexers; both stores use it.
type indexedReader struct {
	services, slices, pods, profiles cache.Indexer
	routeReader
}

var _ Reader = (*indexedReader)(nil)

func (r *indexedReader) Service(namespace, name string) (*corev1.Service, bool) {
	return get[*corev1.Service](r.services, namespace, name)
}

func (r *indexedReader) ServicesByIP(ip netip.Addr) []*corev1.Service {
	return byIndex[*corev1.Service](r.services, indexClusterIP, ip.Unmap().String())
}

func (r *indexedReader) EndpointSlices(namespace, service string) []*discoveryv1.EndpointSlice {
	return byIndex[*discoveryv1.EndpointSlice](r.slices, indexService, namespace+"/"+service)
}

func (r *indexedReader) Pod(namespace, name string) (*corev1.Pod, bool) {
	return get[*corev1.Pod](r.pods, namespace, name)
}

func (r *indexedReader) PodsByIP(ip netip.Addr) []*corev1.Pod {
	return byIndex[*corev1.Pod](r.pods, indexPodIP, ip.Unmap().String())
}

func (r *indexedReader) ServiceProfile(namespace, name string) (*spv1alpha2.ServiceProfile, bool) {
	return get[*spv1alpha2.ServiceProfile](r.profiles, namespace, name)
}

func get[T metav1.Object](idx cache.Indexer, namespace, name string) (T, bool) {
	var zero T
	obj, ok, err := idx.GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return zero, false
	}
	t, ok := obj.(T)
	return t, ok
}

func byIndex[T metav1.Object](idx cache.Indexer, index, value string) []T {
	objs, err := idx.ByIndex(index, value)
	if err != nil {
		return nil
	}
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b T) int {
		if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
			return c
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
	return out
}

// handlers is a list of Handlers, safe for concurrent use.
type handlers struct {
	mu   sync.RWMutex
	list []Handler
}

func (h *handlers) add(f Handler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.list = append(h.list, f)
}

func (h *handlers) dispatch(ev Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, f := range h.list {
		f(ev)
	}
}
