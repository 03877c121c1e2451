package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Kube is a Store fed by client-go shared informers watching a cluster.
// Pods are cached stripped down (see StripPod).
type Kube struct {
	indexedReader
	factory  informers.SharedInformerFactory
	handlers handlers
	synced   []cache.InformerSynced
	log      *slog.Logger
}

var _ Store = (*Kube)(nil)

// NewKube returns a store over client's Services, EndpointSlices and Pods
// in all namespaces. resync is the informers' periodic resync (0 for none;
// resyncs are delivered as Updated events).
func NewKube(client kubernetes.Interface, resync time.Duration, log *slog.Logger) (*Kube, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	factory := informers.NewSharedInformerFactory(client, resync)
	k := &Kube{factory: factory, log: log}

	type spec struct {
		kind      Kind
		informer  cache.SharedIndexInformer
		indexers  cache.Indexers
		transform cache.TransformFunc
	}
	specs := []spec{
		{KindService, factory.Core().V1().Services().Informer(), serviceIndexers(), transformOther},
		{KindEndpointSlice, factory.Discovery().V1().EndpointSlices().Informer(), endpointSliceIndexers(), transformOther},
		{KindPod, factory.Core().V1().Pods().Informer(), podIndexers(), transformPod},
	}
	for _, s := range specs {
		if err := s.informer.SetTransform(s.transform); err != nil {
			return nil, fmt.Errorf("%s informer: setting transform: %w", s.kind, err)
		}
		if err := s.informer.AddIndexers(s.indexers); err != nil {
			return nil, fmt.Errorf("%s informer: adding indexers: %w", s.kind, err)
		}
		reg, err := s.informer.AddEventHandler(k.eventHandler(s.kind))
		if err != nil {
			return nil, fmt.Errorf("%s informer: adding event handler: %w", s.kind, err)
		}
		k.synced = append(k.synced, reg.HasSynced)
	}
	k.services = specs[0].informer.GetIndexer()
	k.slices = specs[1].informer.GetIndexer()
	k.pods = specs[2].informer.GetIndexer()
	return k, nil
}

// AddHandler implements Store.
func (k *Kube) AddHandler(h Handler) { k.handlers.add(h) }

// Run implements Store: it starts the informers and stops them when ctx is done.
func (k *Kube) Run(ctx context.Context) error {
	k.factory.Start(ctx.Done())
	<-ctx.Done()
	k.factory.Shutdown()
	return nil
}

// HasSynced implements Store.
func (k *Kube) HasSynced() bool {
	for _, s := range k.synced {
		if !s() {
			return false
		}
	}
	return true
}

func (k *Kube) eventHandler(kind Kind) cache.ResourceEventHandler {
	emit := func(t EventType, obj, old any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		m, ok := obj.(metav1.Object)
		if !ok || !isKind(kind, obj) {
			k.log.Warn("unexpected object from informer", "kind", kind, "type", fmt.Sprintf("%T", obj))
			return
		}
		ev := Event{Type: t, Kind: kind, Object: m}
		if o, ok := old.(metav1.Object); ok && isKind(kind, old) {
			ev.Old = o
		}
		k.handlers.dispatch(ev)
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { emit(Added, obj, nil) },
		UpdateFunc: func(old, obj any) { emit(Updated, obj, old) },
		DeleteFunc: func(obj any) { emit(Deleted, obj, nil) },
	}
}

func isKind(kind Kind, obj any) bool {
	switch obj.(type) {
	case *corev1.Service:
		return kind == KindService
	case *discoveryv1.EndpointSlice:
		return kind == KindEndpointSlice
	case *corev1.Pod:
		return kind == KindPod
	}
	return false
}
