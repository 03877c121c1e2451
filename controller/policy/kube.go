package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// kubeResources are the watched resources, at the version read.
var kubeResources = []schema.GroupVersionResource{
	{Group: policy.GroupName, Version: "v1beta3", Resource: "servers"},
	{Group: policy.GroupName, Version: "v1beta1", Resource: "serverauthorizations"},
	{Group: policy.GroupName, Version: "v1alpha1", Resource: "authorizationpolicies"},
	{Group: policy.GroupName, Version: "v1alpha1", Resource: "meshtlsauthentications"},
	{Group: policy.GroupName, Version: "v1alpha1", Resource: "networkauthentications"},
	// Per-route authorization (the Gateway API's HTTPRoutes are not
	// watched: their CRD may not be installed).
	policy.HTTPRouteGVR,
	// Their annotations may set the default policy of their pods.
	{Version: "v1", Resource: "namespaces"},
}

// WatchKube keeps x up to date with the cluster's policy resources until
// ctx is done. Resources that fail validation are logged and skipped.
func WatchKube(ctx context.Context, client dynamic.Interface, x *Index, log *slog.Logger) error {
	f := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
	var synced []cache.InformerSynced
	for _, gvr := range kubeResources {
		inf := f.ForResource(gvr).Informer()
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { set(x, o, log) },
			UpdateFunc: func(_, o any) { set(x, o, log) },
			DeleteFunc: func(o any) {
				if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
					o = d.Obj
				}
				if obj, err := fromUnstructured(o); err == nil {
					x.Delete(obj)
				}
			},
		})
		if err != nil {
			return fmt.Errorf("%s informer: %w", gvr.Resource, err)
		}
		synced = append(synced, inf.HasSynced)
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("policy informers did not sync")
	}
	x.MarkSynced()
	x.Notify()
	<-ctx.Done()
	return nil
}

func set(x *Index, o any, log *slog.Logger) {
	obj, err := fromUnstructured(o)
	if err != nil {
		log.Warn("ignoring policy resource", "err", err)
		return
	}
	x.Set(obj)
}

// fromUnstructured decodes and validates an informer's object.
func fromUnstructured(o any) (any, error) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("unexpected object %T", o)
	}
	if u.GetAPIVersion() == "v1" && u.GetKind() == "Namespace" {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), Annotations: u.GetAnnotations()}}, nil
	}
	// Fields the API server adds (status, managedFields) are not in our types.
	u = u.DeepCopy()
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	obj, err := policy.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return obj, nil
}

// PollInterval is how often the local directory is read.
const PollInterval = 300 * time.Millisecond
