package inboundpolicy

import (
	"cmp"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// Workload is a pod as policy sees it.
type Workload struct {
	Namespace, Name string
	Labels          map[string]string
	Annotations     map[string]string
	// NamespaceAnnotations are the annotations of the pod's namespace.
	NamespaceAnnotations map[string]string
	// PortNames maps the pod's container port names to numbers.
	PortNames map[string]uint16
}

// Resources are the policy resources of a cluster (or of the local mesh).
type Resources struct {
	Servers                []*policy.Server
	ServerAuthorizations   []*policy.ServerAuthorization
	AuthorizationPolicies  []*policy.AuthorizationPolicy
	MeshTLSAuthentications []*policy.MeshTLSAuthentication
	NetworkAuthentications []*policy.NetworkAuthentication
	// HTTPRoutes whose parent is a Server give per-route authorization.
	HTTPRoutes []*policy.HTTPRoute
	// NamespaceAnnotations are the annotations of the namespaces, by name
	// (config.linkerd.io/default-inbound-policy sets their pods' default).
	NamespaceAnnotations map[string]map[string]string

	idx *resIndex // set by BuildIndex
}

// Config is the cluster's policy configuration.
type Config struct {
	// DefaultPolicy applies when neither the pod nor its namespace has a
	// default-inbound-policy annotation (install's proxy.defaultInboundPolicy).
	DefaultPolicy   string
	ClusterNetworks []Network
	// TrustDomain and ControllerNamespace form service account identities.
	TrustDomain         string
	ControllerNamespace string
}

// DefaultPolicy returns the workload's default policy: its pod's
// annotation, else its namespace's, else the cluster's. Invalid
// annotations are ignored.
func DefaultPolicy(w Workload, cfg Config) string {
	for _, ann := range []map[string]string{w.Annotations, w.NamespaceAnnotations} {
		if v := ann[k8s.ProxyDefaultInboundPolicyAnnotation]; policy.ValidDefaultPolicy(v) {
			return v
		}
	}
	if policy.ValidDefaultPolicy(cfg.DefaultPolicy) {
		return cfg.DefaultPolicy
	}
	return policy.AllUnauthenticated
}

// Resolve returns the workload's policy: the default (ports no Server
// selects) and one Port per port a Server selects, sorted by port.
func Resolve(w Workload, res *Resources, cfg Config) (Port, []Port) {
	def := Default(DefaultPolicy(w, cfg), cfg.ClusterNetworks)
	x := res.index()
	chosen := map[uint16]*policy.Server{}
	podLabels := labels.Set(w.Labels)
	x.servers[w.Namespace].candidates(w.Labels, func(is indexedServer) {
		s := is.s
		if is.sel == nil || !is.sel.Matches(podLabels) {
			return
		}
		port, ok := serverPort(s, w)
		if !ok {
			return
		}
		// Two Servers on one port: the oldest wins, then the first by name.
		if prev := chosen[port]; prev == nil || older(s, prev) {
			chosen[port] = s
		}
	})
	ports := make([]Port, 0, len(chosen))
	for port, s := range chosen {
		ports = append(ports, serverPolicy(port, s, res, x, cfg))
	}
	slices.SortFunc(ports, func(a, b Port) int { return cmp.Compare(a.Port, b.Port) })
	return def, ports
}

// ResolvePort returns the policy of one port of the workload.
func ResolvePort(w Workload, port uint16, res *Resources, cfg Config) Port {
	def, ports := Resolve(w, res, cfg)
	for _, p := range ports {
		if p.Port == port {
			return p
		}
	}
	def.Port = port
	return def
}

func older(a, b *policy.Server) bool {
	ta, tb := a.CreationTimestamp, b.CreationTimestamp
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	return a.Name < b.Name
}

func serverPort(s *policy.Server, w Workload) (uint16, bool) {
	p := s.Spec.Port
	if p.StrVal == "" {
		if p.IntVal < 1 || p.IntVal > 65535 {
			return 0, false
		}
		return uint16(p.IntVal), true
	}
	n, ok := w.PortNames[p.StrVal]
	return n, ok
}

func serverPolicy(port uint16, s *policy.Server, res *Resources, x *resIndex, cfg Config) Port {
	p := Port{Port: port, ServerKind: KindServer, ServerName: s.Name, Protocol: s.Spec.ProxyProtocol}
	for _, a := range x.sazByServer[nsName(s.Namespace, s.Name)] {
		p.Authorizations = append(p.Authorizations, fromServerAuthorization(a, cfg))
	}
	srvLabels := labels.Set(s.Labels)
	for _, ia := range x.sazBySelector[s.Namespace] {
		if ia.sel != nil && ia.sel.Matches(srvLabels) {
			p.Authorizations = append(p.Authorizations, fromServerAuthorization(ia.a, cfg))
		}
	}
	for _, k := range []string{targetKey(s.Namespace, policy.KindServer, policy.GroupName, s.Name), targetKey(s.Namespace, policy.KindNamespace, "", s.Namespace)} {
		for _, ap := range x.apByTarget[k] {
			if a, ok := fromAuthorizationPolicy(ap, x, cfg); ok {
				p.Authorizations = append(p.Authorizations, a)
			}
		}
	}
	slices.SortStableFunc(p.Authorizations, func(a, b Authorization) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	// What no authorization allows, the Server's accessPolicy decides (deny when unset).
	if s.Spec.AccessPolicy != "" {
		p.Authorizations = append(p.Authorizations, DefaultAuthorizations(s.Spec.AccessPolicy, cfg.ClusterNetworks)...)
	}
	p.Routes = serverRoutes(s, p.Authorizations, x, cfg)
	return p
}

func fromServerAuthorization(a *policy.ServerAuthorization, cfg Config) Authorization {
	c := a.Spec.Client
	out := Authorization{Kind: KindServerAuthorization, Name: a.Name, Unauthenticated: c.Unauthenticated}
	out.Networks = networks(c.Networks)
	if m := c.MeshTLS; m != nil {
		switch {
		case m.UnauthenticatedTLS:
			out.Identities = []string{"*"}
		case len(m.Identities) > 0:
			out.Identities = slices.Clone(m.Identities)
		default:
			for _, sa := range m.ServiceAccounts {
				ns := cmp.Or(sa.Namespace, a.Namespace)
				out.Identities = append(out.Identities, serviceAccountIdentity(sa.Name, ns, cfg))
			}
		}
	}
	return out
}

// fromAuthorizationPolicy translates an AuthorizationPolicy; false when it
// refers to an authentication that does not exist, or to more than one
// identity or network authentication (which the policy-validator refuses,
// as Linkerd's does). The authentications it requires must all hold.
func fromAuthorizationPolicy(ap *policy.AuthorizationPolicy, x *resIndex, cfg Config) (Authorization, bool) {
	out := Authorization{Kind: KindAuthorizationPolicy, Name: ap.Name, Unauthenticated: true}
	var haveID, haveNet bool
	for _, r := range ap.Spec.RequiredAuthenticationRefs {
		ns := cmp.Or(r.Namespace, ap.Namespace)
		switch r.Kind {
		case policy.KindMeshTLSAuthentication:
			m := x.meshTLS[nsName(ns, r.Name)]
			if m == nil || haveID {
				return out, false
			}
			haveID = true
			out.Identities = slices.Clone(m.Spec.Identities)
			for _, ref := range m.Spec.IdentityRefs {
				rns := cmp.Or(ref.Namespace, m.Namespace)
				if ref.Kind == policy.KindNamespace {
					out.Identities = append(out.Identities, "*."+serviceAccountIdentity("", cmp.Or(ref.Name, rns), cfg)[1:])
				} else {
					out.Identities = append(out.Identities, serviceAccountIdentity(ref.Name, rns, cfg))
				}
			}
		case policy.KindServiceAccount:
			if haveID {
				return out, false
			}
			haveID = true
			out.Identities = []string{serviceAccountIdentity(r.Name, ns, cfg)}
		case policy.KindNetworkAuthentication:
			n := x.networks[nsName(ns, r.Name)]
			if n == nil || haveNet {
				return out, false
			}
			haveNet = true
			out.Networks = networks(n.Spec.Networks)
		default:
			return out, false
		}
	}
	out.Unauthenticated = !haveID
	return out, true
}

func networks(in []policy.Network) []Network {
	var out []Network
	for _, n := range in {
		p, err := parsePrefix(n.CIDR)
		if err != nil {
			continue // refused by validation
		}
		net := Network{Net: p}
		for _, e := range n.Except {
			if ep, err := parsePrefix(e); err == nil {
				net.Except = append(net.Except, ep)
			}
		}
		out = append(out, net)
	}
	return out
}

// serviceAccountIdentity is the mesh identity of service account sa in ns
// (sa empty: the part common to the namespace's, starting with ".").
func serviceAccountIdentity(sa, ns string, cfg Config) string {
	td := cmp.Or(cfg.TrustDomain, "cluster.local")
	cp := cmp.Or(cfg.ControllerNamespace, "linkerd")
	return sa + "." + ns + ".serviceaccount.identity." + cp + "." + td
}
