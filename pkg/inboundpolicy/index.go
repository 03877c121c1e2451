package inboundpolicy

import (
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
)

// resIndex finds the resources Resolve needs without scanning them all:
// what a controller serving many workloads builds once per change
// (Resources.BuildIndex) rather than once per workload.
type resIndex struct {
	servers map[string]*nsServers // by namespace
	// sazByServer: ServerAuthorizations naming a Server ("ns/name");
	// sazBySelector: those selecting Servers by label, by namespace.
	sazByServer   map[string][]*policy.ServerAuthorization
	sazBySelector map[string][]indexedSAZ
	// apByTarget: AuthorizationPolicies by "ns/kind/group/name" of their target.
	apByTarget map[string][]*policy.AuthorizationPolicy
	routes     map[string][]*policy.HTTPRoute // by namespace
	meshTLS    map[string]*policy.MeshTLSAuthentication
	networks   map[string]*policy.NetworkAuthentication
}

// nsServers are a namespace's Servers: those whose selector requires a
// label value, by one such "key=value" (a pod is matched against the
// Servers of its own labels only), and the others.
type nsServers struct {
	byLabel map[string][]indexedServer
	other   []indexedServer
}

// candidates returns the Servers that may select a pod with labels.
func (n *nsServers) candidates(podLabels map[string]string, visit func(indexedServer)) {
	if n == nil {
		return
	}
	for _, is := range n.other {
		visit(is)
	}
	for k, v := range podLabels {
		for _, is := range n.byLabel[k+"="+v] {
			visit(is)
		}
	}
}

type indexedServer struct {
	s   *policy.Server
	sel labels.Selector // nil: selects nothing
}

type indexedSAZ struct {
	a   *policy.ServerAuthorization
	sel labels.Selector
}

// BuildIndex prepares r for many Resolve calls. r must not change after,
// and BuildIndex must be called before r is shared between goroutines.
func (r *Resources) BuildIndex() { r.idx = newIndex(r) }

// index returns r's index, or a fresh one when r has none.
func (r *Resources) index() *resIndex {
	if r.idx != nil {
		return r.idx
	}
	return newIndex(r)
}

func selector(s *metav1.LabelSelector) labels.Selector {
	if s == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return nil
	}
	return sel
}

func nsName(ns, name string) string { return ns + "/" + name }

func targetKey(ns, kind, group, name string) string {
	return ns + "/" + kind + "/" + group + "/" + name
}

func newIndex(r *Resources) *resIndex {
	x := &resIndex{
		servers:       map[string]*nsServers{},
		sazByServer:   map[string][]*policy.ServerAuthorization{},
		sazBySelector: map[string][]indexedSAZ{},
		apByTarget:    map[string][]*policy.AuthorizationPolicy{},
		routes:        map[string][]*policy.HTTPRoute{},
		meshTLS:       map[string]*policy.MeshTLSAuthentication{},
		networks:      map[string]*policy.NetworkAuthentication{},
	}
	for _, s := range r.Servers {
		n := x.servers[s.Namespace]
		if n == nil {
			n = &nsServers{byLabel: map[string][]indexedServer{}}
			x.servers[s.Namespace] = n
		}
		is := indexedServer{s, selector(s.Spec.PodSelector)}
		if ps := s.Spec.PodSelector; ps != nil && len(ps.MatchLabels) > 0 {
			k := slices.Min(slices.Collect(maps.Keys(ps.MatchLabels)))
			n.byLabel[k+"="+ps.MatchLabels[k]] = append(n.byLabel[k+"="+ps.MatchLabels[k]], is)
		} else {
			n.other = append(n.other, is)
		}
	}
	for _, a := range r.ServerAuthorizations {
		if ref := a.Spec.Server; ref.Name != "" {
			k := nsName(a.Namespace, ref.Name)
			x.sazByServer[k] = append(x.sazByServer[k], a)
		} else {
			x.sazBySelector[a.Namespace] = append(x.sazBySelector[a.Namespace], indexedSAZ{a, selector(ref.Selector)})
		}
	}
	for _, ap := range r.AuthorizationPolicies {
		t := ap.Spec.TargetRef
		group := t.Group
		if t.Kind != policy.KindNamespace && group == "" {
			group = policy.GroupName
		}
		if t.Kind == policy.KindNamespace {
			group = ""
		}
		k := targetKey(ap.Namespace, t.Kind, group, t.Name)
		x.apByTarget[k] = append(x.apByTarget[k], ap)
	}
	for _, hr := range r.HTTPRoutes {
		x.routes[hr.Namespace] = append(x.routes[hr.Namespace], hr)
	}
	for _, m := range r.MeshTLSAuthentications {
		x.meshTLS[nsName(m.Namespace, m.Name)] = m
	}
	for _, n := range r.NetworkAuthentications {
		x.networks[nsName(n.Namespace, n.Name)] = n
	}
	return x
}
