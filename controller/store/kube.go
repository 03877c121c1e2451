package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	spv1alpha2 "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
	"github.com/linkerd-go/linkerd/pkg/apis/split"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Kube is a Store fed by client-go shared informers watching a cluster.
// Pods are cached stripped down (see StripPod).
type Kube struct {
	indexedReader
	factory informers.SharedInformerFactory
	// dynFactory watches the ServiceProfiles, when WatchProfiles was called.
	dynFactory dynamicinformer.DynamicSharedInformerFactory
	handlers   handlers
	synced     []cache.InformerSynced
	log        *slog.Logger
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
	k.profiles = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	k.routeReader = newRouteIndexers()
	return k, nil
}

// WatchProfiles adds the ServiceProfiles (linkerd.io/v1alpha2) read with
// dyn to the store; without it the store has none. It must be called
// before Run.
func (k *Kube) WatchProfiles(dyn dynamic.Interface, resync time.Duration) error {
	if k.dynFactory == nil {
		k.dynFactory = newDynamicFactory(dyn, resync)
	}
	inf := k.dynFactory.ForResource(spv1alpha2.GroupVersionResource).Informer()
	if err := inf.SetTransform(toServiceProfile); err != nil {
		return fmt.Errorf("ServiceProfile informer: setting transform: %w", err)
	}
	// Not part of HasSynced: a cluster without the CRD still serves
	// endpoints; profiles arrive once listed.
	if _, err := inf.AddEventHandler(k.eventHandler(KindServiceProfile)); err != nil {
		return fmt.Errorf("ServiceProfile informer: adding event handler: %w", err)
	}
	k.profiles = inf.GetIndexer()
	return nil
}

func newDynamicFactory(dyn dynamic.Interface, resync time.Duration) dynamicinformer.DynamicSharedInformerFactory {
	return dynamicinformer.NewDynamicSharedInformerFactory(dyn, resync)
}

// toServiceProfile converts the dynamic informer's objects to typed
// ServiceProfiles; one that does not convert is kept as an empty profile
// with its metadata (and a warning from the destination service).
func toServiceProfile(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	sp := &spv1alpha2.ServiceProfile{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, sp); err != nil {
		sp = &spv1alpha2.ServiceProfile{ObjectMeta: metav1.ObjectMeta{
			Name: u.GetName(), Namespace: u.GetNamespace(), ResourceVersion: u.GetResourceVersion(),
			Annotations: map[string]string{InvalidAnnotation: err.Error()},
		}}
	}
	sp.ManagedFields = nil
	return sp, nil
}

// InvalidAnnotation marks a stored object that could not be decoded; its
// value is why.
const InvalidAnnotation = "store.linkerd-go.io/invalid"

// AddHandler implements Store.
func (k *Kube) AddHandler(h Handler) { k.handlers.add(h) }

// Run implements Store: it starts the informers and stops them when ctx is done.
func (k *Kube) Run(ctx context.Context) error {
	k.factory.Start(ctx.Done())
	if k.dynFactory != nil {
		k.dynFactory.Start(ctx.Done())
	}
	<-ctx.Done()
	k.factory.Shutdown()
	if k.dynFactory != nil {
		k.dynFactory.Shutdown()
	}
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
	case *spv1alpha2.ServiceProfile:
		return kind == KindServiceProfile
	case *split.TrafficSplit:
		return kind == KindTrafficSplit
	case *policy.HTTPRoute:
		return kind == KindHTTPRoute || kind == KindGatewayHTTPRoute
	}
	return false
}
