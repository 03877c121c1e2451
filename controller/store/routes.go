package store

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/apis/split"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
)

// The traffic-splitting kinds a Store holds: TrafficSplit
// (split.smi-spec.io) and HTTPRoute, of policy.linkerd.io (KindHTTPRoute)
// and of gateway.networking.k8s.io (KindGatewayHTTPRoute); both HTTPRoutes
// are *policy.HTTPRoute.
const (
	KindTrafficSplit     Kind = "TrafficSplit"
	KindHTTPRoute        Kind = "HTTPRoute"
	KindGatewayHTTPRoute Kind = "HTTPRoute.gateway.networking.k8s.io"
)

// indexParentService indexes HTTPRoutes by the "namespace/name" of each
// Service they name as a parent.
const indexParentService = "parentService"

// routeReader answers queries about TrafficSplits and HTTPRoutes; both
// stores embed it in indexedReader.
type routeReader struct {
	splits, routes, gatewayRoutes cache.Indexer
}

func newRouteIndexers() routeReader {
	return routeReader{
		splits:        cache.NewIndexer(cache.MetaNamespaceKeyFunc, splitIndexers()),
		routes:        cache.NewIndexer(cache.MetaNamespaceKeyFunc, routeIndexers()),
		gatewayRoutes: cache.NewIndexer(cache.MetaNamespaceKeyFunc, routeIndexers()),
	}
}

func splitIndexers() cache.Indexers {
	return cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
}

func routeIndexers() cache.Indexers {
	return cache.Indexers{
		indexParentService: func(obj any) ([]string, error) {
			r, ok := obj.(*policy.HTTPRoute)
			if !ok {
				return nil, nil
			}
			var out []string
			for i := range r.Spec.ParentRefs {
				p := &r.Spec.ParentRefs[i]
				if !p.IsServiceParent() {
					continue
				}
				ns := p.Namespace
				if ns == "" {
					ns = r.Namespace
				}
				if k := ns + "/" + p.Name; !slices.Contains(out, k) {
					out = append(out, k)
				}
			}
			return out, nil
		},
	}
}

// TrafficSplits returns the TrafficSplits of namespace, as stored (not
// validated), sorted by name.
func (r *routeReader) TrafficSplits(namespace string) []*split.TrafficSplit {
	if r.splits == nil {
		return nil
	}
	return byIndex[*split.TrafficSplit](r.splits, cache.NamespaceIndex, namespace)
}

// HTTPRoutesFor returns the HTTPRoutes of both groups that name Service
// namespace/name as a parent, as stored (not validated), sorted by
// namespace and name (policy.linkerd.io first for equal names).
func (r *routeReader) HTTPRoutesFor(namespace, service string) []*policy.HTTPRoute {
	var out []*policy.HTTPRoute
	for _, idx := range []cache.Indexer{r.routes, r.gatewayRoutes} {
		if idx != nil {
			out = append(out, byIndex[*policy.HTTPRoute](idx, indexParentService, namespace+"/"+service)...)
		}
	}
	slices.SortStableFunc(out, func(a, b *policy.HTTPRoute) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// httpRouteKind returns the Kind of an HTTPRoute by its apiVersion's group.
func httpRouteKind(r *policy.HTTPRoute) Kind {
	if strings.HasPrefix(r.APIVersion, policy.GatewayGroupName+"/") {
		return KindGatewayHTTPRoute
	}
	return KindHTTPRoute
}

// WatchRoutes adds the TrafficSplits and the HTTPRoutes of both groups,
// read with dyn, to the store; without it the store has none. Resources
// that disc says the cluster does not serve (a CRD not installed) are not
// watched (a CRD installed later needs a restart); a nil disc watches all.
// It must be called before Run.
func (k *Kube) WatchRoutes(dyn dynamic.Interface, disc discovery.DiscoveryInterface, resync time.Duration) error {
	if k.dynFactory == nil {
		k.dynFactory = newDynamicFactory(dyn, resync)
	}
	watches := []struct {
		kind Kind
		gvr  schema.GroupVersionResource
		idx  *cache.Indexer
		ixs  cache.Indexers
		to   func() metav1.Object
	}{
		{KindTrafficSplit, split.GroupVersionResource, &k.splits, splitIndexers(), func() metav1.Object { return &split.TrafficSplit{} }},
		{KindHTTPRoute, policy.HTTPRouteGVR, &k.routes, routeIndexers(), func() metav1.Object { return &policy.HTTPRoute{} }},
		{KindGatewayHTTPRoute, policy.GatewayHTTPRouteGVR, &k.gatewayRoutes, routeIndexers(), func() metav1.Object { return &policy.HTTPRoute{} }},
	}
	for _, w := range watches {
		if disc != nil && !served(disc, w.gvr) {
			k.log.Info("resource not served by the cluster; not watching it", "resource", w.gvr.String())
			continue
		}
		inf := k.dynFactory.ForResource(w.gvr).Informer()
		if err := inf.SetTransform(typedTransform(w.to)); err != nil {
			return fmt.Errorf("%s informer: setting transform: %w", w.kind, err)
		}
		// The informer indexes by namespace already.
		ixs := cache.Indexers{}
		for name, f := range w.ixs {
			if _, ok := inf.GetIndexer().GetIndexers()[name]; !ok {
				ixs[name] = f
			}
		}
		if err := inf.AddIndexers(ixs); err != nil {
			return fmt.Errorf("%s informer: adding indexers: %w", w.kind, err)
		}
		// Not part of HasSynced, as for ServiceProfiles.
		if _, err := inf.AddEventHandler(k.eventHandler(w.kind)); err != nil {
			return fmt.Errorf("%s informer: adding event handler: %w", w.kind, err)
		}
		*w.idx = inf.GetIndexer()
	}
	return nil
}

// served reports whether the cluster serves gvr.
func served(disc discovery.DiscoveryInterface, gvr schema.GroupVersionResource) bool {
	list, err := disc.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if err != nil {
		return false
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true
		}
	}
	return false
}

// typedTransform converts the dynamic informer's objects to the typed
// objects newObj returns; one that does not convert is kept with its
// metadata only and InvalidAnnotation (destination ignores it with a
// warning).
func typedTransform(newObj func() metav1.Object) cache.TransformFunc {
	return func(obj any) (any, error) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			o, err := typedTransform(newObj)(d.Obj)
			d.Obj = o
			return d, err
		}
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj, nil
		}
		out := newObj()
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
			out = newObj()
			out.SetName(u.GetName())
			out.SetNamespace(u.GetNamespace())
			out.SetResourceVersion(u.GetResourceVersion())
			out.SetAnnotations(map[string]string{InvalidAnnotation: err.Error()})
			if tm, ok := out.(interface{ GetObjectKind() schema.ObjectKind }); ok {
				tm.GetObjectKind().SetGroupVersionKind(u.GroupVersionKind())
			}
		}
		out.SetManagedFields(nil)
		return out, nil
	}
}
