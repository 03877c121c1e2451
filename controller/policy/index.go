// Package policy is the policy controller: it keeps the policy resources
// (Servers, authorizations, authentications; from Kubernetes informers or
// a local directory) and serves each proxy its inbound policy per port
// over the InboundPolicy API (proto/policy/v1), resolved by
// pkg/inboundpolicy from the resources and the proxy's pod (from the
// destination service's store), again after every change.
package policy

import (
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
)

// Index holds the current policy resources and tells watchers of changes.
// It is safe for concurrent use.
type Index struct {
	mu      sync.Mutex
	objs    map[key]any
	changed chan struct{}
	synced  bool
	// snap is the resources as Snapshot returns them, built once per
	// change for all the watchers; nil after a change.
	snap *inboundpolicy.Resources
}

type key struct{ kind, ns, name string }

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{objs: map[key]any{}, changed: make(chan struct{})}
}

func keyOf(obj any) (key, bool) {
	switch o := obj.(type) {
	case *policy.Server:
		return key{policy.KindServer, o.Namespace, o.Name}, true
	case *policy.ServerAuthorization:
		return key{policy.KindServerAuthorization, o.Namespace, o.Name}, true
	case *policy.AuthorizationPolicy:
		return key{policy.KindAuthorizationPolicy, o.Namespace, o.Name}, true
	case *policy.MeshTLSAuthentication:
		return key{policy.KindMeshTLSAuthentication, o.Namespace, o.Name}, true
	case *policy.NetworkAuthentication:
		return key{policy.KindNetworkAuthentication, o.Namespace, o.Name}, true
	case *policy.HTTPRoute:
		group, _, _ := strings.Cut(o.APIVersion, "/")
		return key{group + "/" + policy.KindHTTPRoute, o.Namespace, o.Name}, true
	case *corev1.Namespace:
		return key{policy.KindNamespace, "", o.Name}, true
	}
	return key{}, false
}

// Set adds or replaces obj (a policy resource from package pkg/apis/policy,
// or a *corev1.Namespace, whose annotations may set its pods' default policy).
func (x *Index) Set(obj any) {
	k, ok := keyOf(obj)
	if !ok {
		return
	}
	x.mu.Lock()
	x.objs[k] = obj
	x.notifyLocked()
	x.mu.Unlock()
}

// Delete removes obj.
func (x *Index) Delete(obj any) {
	k, ok := keyOf(obj)
	if !ok {
		return
	}
	x.mu.Lock()
	delete(x.objs, k)
	x.notifyLocked()
	x.mu.Unlock()
}

// Replace replaces every resource with objs and marks the index synced.
func (x *Index) Replace(objs []any) {
	m := make(map[key]any, len(objs))
	for _, o := range objs {
		if k, ok := keyOf(o); ok {
			m[k] = o
		}
	}
	x.mu.Lock()
	x.objs, x.synced = m, true
	x.notifyLocked()
	x.mu.Unlock()
}

// MarkSynced records that the initial state is loaded.
func (x *Index) MarkSynced() {
	x.mu.Lock()
	x.synced = true
	x.mu.Unlock()
}

// Synced reports whether the initial state is loaded.
func (x *Index) Synced() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.synced
}

// Notify wakes the watchers (something they depend on changed, e.g. a pod).
func (x *Index) Notify() {
	x.mu.Lock()
	x.notifyLocked()
	x.mu.Unlock()
}

func (x *Index) notifyLocked() {
	x.snap = nil
	close(x.changed)
	x.changed = make(chan struct{})
}

// Snapshot returns the current resources and a channel closed at the next
// change. The resources are shared by the callers: they must not change them.
func (x *Index) Snapshot() (*inboundpolicy.Resources, <-chan struct{}) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.snap != nil {
		return x.snap, x.changed
	}
	r := &inboundpolicy.Resources{}
	for _, o := range x.objs {
		switch o := o.(type) {
		case *policy.Server:
			r.Servers = append(r.Servers, o)
		case *policy.ServerAuthorization:
			r.ServerAuthorizations = append(r.ServerAuthorizations, o)
		case *policy.AuthorizationPolicy:
			r.AuthorizationPolicies = append(r.AuthorizationPolicies, o)
		case *policy.MeshTLSAuthentication:
			r.MeshTLSAuthentications = append(r.MeshTLSAuthentications, o)
		case *policy.NetworkAuthentication:
			r.NetworkAuthentications = append(r.NetworkAuthentications, o)
		case *policy.HTTPRoute:
			r.HTTPRoutes = append(r.HTTPRoutes, o)
		case *corev1.Namespace:
			if r.NamespaceAnnotations == nil {
				r.NamespaceAnnotations = map[string]map[string]string{}
			}
			r.NamespaceAnnotations[o.Name] = o.Annotations // never modified: Set replaces
		}
	}
	r.BuildIndex()
	x.snap = r
	return r, x.changed
}
