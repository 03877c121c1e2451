package inboundpolicy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	webID   = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
	voteID  = "vote-bot.emojivoto.serviceaccount.identity.linkerd.cluster.local"
	otherID = "web.other.serviceaccount.identity.linkerd.cluster.local"
)

var (
	clusterIP = netip.MustParseAddr("10.42.0.7")
	outsideIP = netip.MustParseAddr("203.0.113.9")
	cluster   = []Network{{Net: netip.MustParsePrefix("10.0.0.0/8")}}
)

func meta(name string, age time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "emojivoto",
		CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(-age))}
}

func server(name string, port intstr.IntOrString, access string, age time.Duration) *policy.Server {
	return &policy.Server{ObjectMeta: meta(name, age), Spec: policy.ServerSpec{
		PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web-svc"}},
		Port:        port, AccessPolicy: access}}
}

func authzPolicy(name, target string, refs ...policy.TargetRef) *policy.AuthorizationPolicy {
	return &policy.AuthorizationPolicy{ObjectMeta: meta(name, 0), Spec: policy.AuthorizationPolicySpec{
		TargetRef:                  policy.TargetRef{Group: policy.GroupName, Kind: policy.KindServer, Name: target},
		RequiredAuthenticationRefs: refs}}
}

// client is one connection attempt and whether it must be allowed.
type client struct {
	addr  netip.Addr
	id    string
	allow bool
}

func TestResolve(t *testing.T) {
	web := Workload{Namespace: "emojivoto", Name: "web-1", Labels: map[string]string{"app": "web-svc"},
		PortNames: map[string]uint16{"http": 8080}}
	webSA := policy.TargetRef{Kind: policy.KindServiceAccount, Name: "web"}
	meshRef := policy.TargetRef{Group: policy.GroupName, Kind: policy.KindMeshTLSAuthentication, Name: "voters"}
	netRef := policy.TargetRef{Group: policy.GroupName, Kind: policy.KindNetworkAuthentication, Name: "cluster"}
	voters := &policy.MeshTLSAuthentication{ObjectMeta: meta("voters", 0), Spec: policy.MeshTLSAuthenticationSpec{
		Identities: []string{"vote-bot.emojivoto.serviceaccount.identity.linkerd.cluster.local"}}}
	clusterNet := &policy.NetworkAuthentication{ObjectMeta: meta("cluster", 0), Spec: policy.NetworkAuthenticationSpec{
		Networks: []policy.Network{{CIDR: "10.0.0.0/8", Except: []string{"10.42.0.0/16"}}}}}

	tests := []struct {
		name       string
		w          func(Workload) Workload
		res        Resources
		def        string
		port       uint16
		wantServer string // srv_name
		wantAuthz  string // authz_name of the first client's match when allowed
		clients    []client
	}{
		{name: "default all-unauthenticated", def: policy.AllUnauthenticated, port: 8080, wantServer: "all-unauthenticated", wantAuthz: "all-unauthenticated",
			clients: []client{{outsideIP, "", true}, {clusterIP, webID, true}}},
		{name: "default all-authenticated", def: policy.AllAuthenticated, port: 8080, wantServer: "all-authenticated", wantAuthz: "all-authenticated",
			clients: []client{{outsideIP, webID, true}, {clusterIP, "", false}}},
		{name: "default cluster-unauthenticated", def: policy.ClusterUnauthenticated, port: 8080, wantServer: "cluster-unauthenticated", wantAuthz: "cluster-unauthenticated",
			clients: []client{{clusterIP, "", true}, {outsideIP, webID, false}}},
		{name: "default cluster-authenticated", def: policy.ClusterAuthenticated, port: 8080, wantServer: "cluster-authenticated", wantAuthz: "cluster-authenticated",
			clients: []client{{clusterIP, webID, true}, {clusterIP, "", false}, {outsideIP, webID, false}}},
		{name: "default deny", def: policy.Deny, port: 8080, wantServer: "deny",
			clients: []client{{clusterIP, webID, false}, {clusterIP, "", false}}},
		{name: "empty default is all-unauthenticated", port: 8080, wantServer: "all-unauthenticated", wantAuthz: "all-unauthenticated",
			clients: []client{{outsideIP, "", true}}},
		{name: "namespace annotation beats cluster default", def: policy.AllUnauthenticated, port: 8080, wantServer: "deny",
			w: func(w Workload) Workload {
				w.NamespaceAnnotations = map[string]string{k8s.ProxyDefaultInboundPolicyAnnotation: policy.Deny}
				return w
			},
			clients: []client{{clusterIP, webID, false}}},
		{name: "pod annotation beats namespace annotation", def: policy.Deny, port: 8080, wantServer: "all-authenticated", wantAuthz: "all-authenticated",
			w: func(w Workload) Workload {
				w.NamespaceAnnotations = map[string]string{k8s.ProxyDefaultInboundPolicyAnnotation: policy.Deny}
				w.Annotations = map[string]string{k8s.ProxyDefaultInboundPolicyAnnotation: policy.AllAuthenticated}
				return w
			},
			clients: []client{{clusterIP, webID, true}, {clusterIP, "", false}}},
		{name: "invalid annotation ignored", def: policy.Deny, port: 8080, wantServer: "deny",
			w: func(w Workload) Workload {
				w.Annotations = map[string]string{k8s.ProxyDefaultInboundPolicyAnnotation: "everyone"}
				return w
			},
			clients: []client{{clusterIP, webID, false}}},
		{name: "server without authorizations denies despite an open default", def: policy.AllUnauthenticated, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromString("http"), "", 0)}}, wantServer: "web-http",
			clients: []client{{clusterIP, webID, false}, {clusterIP, "", false}}},
		{name: "server on another port leaves the default", def: policy.AllUnauthenticated, port: 9090,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)}}, wantServer: "all-unauthenticated", wantAuthz: "all-unauthenticated",
			clients: []client{{clusterIP, "", true}}},
		{name: "server selecting other pods leaves the default", def: policy.Deny, port: 8080,
			res: Resources{Servers: []*policy.Server{func() *policy.Server {
				s := server("web-http", intstr.FromInt32(8080), "", 0)
				s.Spec.PodSelector.MatchLabels = map[string]string{"app": "voting"}
				return s
			}()}}, wantServer: "deny", clients: []client{{clusterIP, webID, false}}},
		{name: "server selecting by expression and by two labels", def: policy.Deny, port: 8080,
			res: Resources{Servers: []*policy.Server{func() *policy.Server {
				s := server("by-expression", intstr.FromInt32(8080), policy.AllUnauthenticated, 0)
				s.Spec.PodSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web-svc", "other"}}}}
				return s
			}(), func() *policy.Server {
				s := server("two-labels", intstr.FromInt32(8080), policy.AllUnauthenticated, time.Hour)
				s.Spec.PodSelector.MatchLabels = map[string]string{"app": "web-svc", "tier": "nope"}
				return s
			}()}}, wantServer: "by-expression", wantAuthz: "all-unauthenticated", clients: []client{{outsideIP, "", true}}},
		{name: "server accessPolicy after authorizations", def: policy.Deny, port: 8080,
			res:        Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), policy.ClusterUnauthenticated, 0)}},
			wantServer: "web-http", wantAuthz: "cluster-unauthenticated",
			clients: []client{{clusterIP, "", true}, {outsideIP, webID, false}}},
		{name: "oldest server wins", def: policy.Deny, port: 8080,
			res: Resources{Servers: []*policy.Server{
				server("young", intstr.FromInt32(8080), policy.Deny, time.Hour),
				server("old", intstr.FromString("http"), policy.AllUnauthenticated, 2*time.Hour)}},
			wantServer: "old", wantAuthz: "all-unauthenticated", clients: []client{{outsideIP, "", true}}},
		{name: "authorization policy by service account", def: policy.AllUnauthenticated, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				AuthorizationPolicies: []*policy.AuthorizationPolicy{authzPolicy("web-only", "web-http", webSA)}},
			wantServer: "web-http", wantAuthz: "web-only",
			clients: []client{{clusterIP, webID, true}, {clusterIP, voteID, false}, {clusterIP, otherID, false}, {clusterIP, "", false}}},
		{name: "authorization policy mesh and network: both required", def: policy.AllUnauthenticated, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				AuthorizationPolicies:  []*policy.AuthorizationPolicy{authzPolicy("voters-in-cluster", "web-http", meshRef, netRef)},
				MeshTLSAuthentications: []*policy.MeshTLSAuthentication{voters},
				NetworkAuthentications: []*policy.NetworkAuthentication{clusterNet}},
			wantServer: "web-http", wantAuthz: "voters-in-cluster",
			clients: []client{{netip.MustParseAddr("10.1.2.3"), voteID, true}, {clusterIP, voteID, false}, {netip.MustParseAddr("10.1.2.3"), webID, false}, {outsideIP, voteID, false}}},
		{name: "authorization policy service account and network: both required", def: policy.AllUnauthenticated, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				AuthorizationPolicies:  []*policy.AuthorizationPolicy{authzPolicy("web-in-cluster", "web-http", netRef, webSA)},
				NetworkAuthentications: []*policy.NetworkAuthentication{clusterNet}},
			wantServer: "web-http", wantAuthz: "web-in-cluster",
			clients: []client{{netip.MustParseAddr("10.1.2.3"), webID, true}, {clusterIP, webID, false}, {outsideIP, webID, false},
				{netip.MustParseAddr("10.1.2.3"), "", false}, {netip.MustParseAddr("10.1.2.3"), voteID, false}}},
		{name: "authorization policy mesh by identityRefs and network", def: policy.Deny, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				AuthorizationPolicies: []*policy.AuthorizationPolicy{authzPolicy("refs", "web-http", meshRef, netRef)},
				MeshTLSAuthentications: []*policy.MeshTLSAuthentication{{ObjectMeta: meta("voters", 0), Spec: policy.MeshTLSAuthenticationSpec{
					IdentityRefs: []policy.TargetRef{{Kind: policy.KindServiceAccount, Name: "vote-bot"}, {Kind: policy.KindNamespace, Name: "other"}}}}},
				NetworkAuthentications: []*policy.NetworkAuthentication{clusterNet}},
			wantServer: "web-http", wantAuthz: "refs",
			clients: []client{{netip.MustParseAddr("10.1.2.3"), voteID, true}, {netip.MustParseAddr("10.1.2.3"), otherID, true},
				{netip.MustParseAddr("10.1.2.3"), webID, false}, {outsideIP, otherID, false}}},
		{name: "authorization policy authentications from another namespace", def: policy.Deny, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				AuthorizationPolicies: []*policy.AuthorizationPolicy{authzPolicy("shared", "web-http",
					policy.TargetRef{Group: policy.GroupName, Kind: policy.KindMeshTLSAuthentication, Name: "voters", Namespace: "shared"},
					policy.TargetRef{Group: policy.GroupName, Kind: policy.KindNetworkAuthentication, Name: "cluster", Namespace: "shared"})},
				MeshTLSAuthentications: []*policy.MeshTLSAuthentication{func() *policy.MeshTLSAuthentication {
					m := *voters
					m.Namespace = "shared"
					return &m
				}(), voters},
				NetworkAuthentications: []*policy.NetworkAuthentication{func() *policy.NetworkAuthentication {
					n := *clusterNet
					n.Namespace = "shared"
					n.Spec.Networks = []policy.Network{{CIDR: "10.42.0.0/16"}}
					return &n
				}(), clusterNet}},
			wantServer: "web-http", wantAuthz: "shared",
			// The shared network (10.42/16), not the local one (10/8 except 10.42/16).
			clients: []client{{clusterIP, voteID, true}, {netip.MustParseAddr("10.1.2.3"), voteID, false}}},
		{name: "authorization policy with two identity authentications is ignored", def: policy.AllUnauthenticated, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				AuthorizationPolicies:  []*policy.AuthorizationPolicy{authzPolicy("two-ids", "web-http", meshRef, webSA)},
				MeshTLSAuthentications: []*policy.MeshTLSAuthentication{voters}},
			wantServer: "web-http", clients: []client{{clusterIP, voteID, false}, {clusterIP, webID, false}}},
		{name: "authorization policy with two network authentications is ignored", def: policy.AllUnauthenticated, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				AuthorizationPolicies: []*policy.AuthorizationPolicy{authzPolicy("two-nets", "web-http", netRef,
					policy.TargetRef{Group: policy.GroupName, Kind: policy.KindNetworkAuthentication, Name: "all"})},
				NetworkAuthentications: []*policy.NetworkAuthentication{clusterNet, {ObjectMeta: meta("all", 0),
					Spec: policy.NetworkAuthenticationSpec{Networks: []policy.Network{{CIDR: "0.0.0.0/0"}}}}}},
			wantServer: "web-http", clients: []client{{netip.MustParseAddr("10.1.2.3"), "", false}, {outsideIP, "", false}}},
		{name: "two authorization policies: either allows", def: policy.Deny, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				AuthorizationPolicies:  []*policy.AuthorizationPolicy{authzPolicy("a-web", "web-http", webSA), authzPolicy("b-voters", "web-http", meshRef, netRef)},
				MeshTLSAuthentications: []*policy.MeshTLSAuthentication{voters},
				NetworkAuthentications: []*policy.NetworkAuthentication{clusterNet}},
			wantServer: "web-http", wantAuthz: "a-web",
			clients: []client{{outsideIP, webID, true}, {netip.MustParseAddr("10.1.2.3"), voteID, true}, {outsideIP, voteID, false}}},
		{name: "authorization policy network only: unauthenticated", def: policy.Deny, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				AuthorizationPolicies:  []*policy.AuthorizationPolicy{authzPolicy("net", "web-http", netRef)},
				NetworkAuthentications: []*policy.NetworkAuthentication{clusterNet}},
			wantServer: "web-http", wantAuthz: "net",
			clients: []client{{netip.MustParseAddr("10.1.2.3"), "", true}, {outsideIP, "", false}}},
		{name: "authorization policy missing authentication is ignored", def: policy.AllUnauthenticated, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				AuthorizationPolicies: []*policy.AuthorizationPolicy{authzPolicy("dangling", "web-http", meshRef)}},
			wantServer: "web-http", clients: []client{{clusterIP, voteID, false}}},
		{name: "authorization policy targeting another server", def: policy.AllUnauthenticated, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				AuthorizationPolicies: []*policy.AuthorizationPolicy{authzPolicy("elsewhere", "admin", webSA)}},
			wantServer: "web-http", clients: []client{{clusterIP, webID, false}}},
		{name: "authorization policy targeting the namespace", def: policy.Deny, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				AuthorizationPolicies: []*policy.AuthorizationPolicy{{ObjectMeta: meta("ns-wide", 0), Spec: policy.AuthorizationPolicySpec{
					TargetRef:                  policy.TargetRef{Kind: policy.KindNamespace, Name: "emojivoto"},
					RequiredAuthenticationRefs: []policy.TargetRef{webSA}}}}},
			wantServer: "web-http", wantAuthz: "ns-wide", clients: []client{{clusterIP, webID, true}, {clusterIP, voteID, false}}},
		{name: "serverauthorization 2.11 by name with service accounts", def: policy.AllUnauthenticated, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				ServerAuthorizations: []*policy.ServerAuthorization{{ObjectMeta: meta("vote-bot", 0), Spec: policy.ServerAuthorizationSpec{
					Server: policy.ServerRef{Name: "web-http"},
					Client: policy.Client{MeshTLS: &policy.MeshTLS{ServiceAccounts: []policy.ServiceAccountRef{{Name: "vote-bot"}}}}}}}},
			wantServer: "web-http", wantAuthz: "vote-bot", clients: []client{{clusterIP, voteID, true}, {clusterIP, webID, false}, {clusterIP, "", false}}},
		{name: "serverauthorization by server selector, unauthenticated from networks", def: policy.Deny, port: 8080,
			res: Resources{Servers: []*policy.Server{func() *policy.Server {
				s := server("web-http", intstr.FromInt32(8080), "", 0)
				s.Labels = map[string]string{"tier": "front"}
				return s
			}()},
				ServerAuthorizations: []*policy.ServerAuthorization{{ObjectMeta: meta("probes", 0), Spec: policy.ServerAuthorizationSpec{
					Server: policy.ServerRef{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "front"}}},
					Client: policy.Client{Unauthenticated: true, Networks: []policy.Network{{CIDR: "10.0.0.0/8"}}}}}}},
			wantServer: "web-http", wantAuthz: "probes", clients: []client{{clusterIP, "", true}, {outsideIP, "", false}}},
		{name: "serverauthorization identity suffix", def: policy.Deny, port: 8080,
			res: Resources{Servers: []*policy.Server{server("web-http", intstr.FromInt32(8080), "", 0)},
				ServerAuthorizations: []*policy.ServerAuthorization{{ObjectMeta: meta("ns", 0), Spec: policy.ServerAuthorizationSpec{
					Server: policy.ServerRef{Name: "web-http"},
					Client: policy.Client{MeshTLS: &policy.MeshTLS{Identities: []string{"*.emojivoto.serviceaccount.identity.linkerd.cluster.local"}}}}}}},
			wantServer: "web-http", wantAuthz: "ns", clients: []client{{clusterIP, voteID, true}, {clusterIP, otherID, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := web
			if tt.w != nil {
				w = tt.w(w)
			}
			cfg := Config{DefaultPolicy: tt.def, ClusterNetworks: cluster}
			p := ResolvePort(w, tt.port, &tt.res, cfg)
			if p.Port != tt.port || p.ServerName != tt.wantServer {
				t.Fatalf("port %d server %q, want %d %q", p.Port, p.ServerName, tt.port, tt.wantServer)
			}
			for i, c := range tt.clients {
				a := p.Authorize(c.addr, c.id)
				if (a != nil) != c.allow {
					t.Errorf("client %d (%s, %q): allowed=%v, want %v (policy %+v)", i, c.addr, c.id, a != nil, c.allow, p)
				}
				if i == 0 && a != nil && a.Name != tt.wantAuthz {
					t.Errorf("client 0 allowed by %q, want %q", a.Name, tt.wantAuthz)
				}
			}
		})
	}
}

func TestMatchIdentity(t *testing.T) {
	tests := []struct {
		pattern, id string
		want        bool
	}{
		{"*", webID, true},
		{"*", "", false},
		{webID, webID, true},
		{webID, voteID, false},
		{"*.emojivoto.serviceaccount.identity.linkerd.cluster.local", webID, true},
		{"*.emojivoto.serviceaccount.identity.linkerd.cluster.local", ".emojivoto.serviceaccount.identity.linkerd.cluster.local", false},
		{"*.cluster.local", "evilcluster.local", false},
	}
	for _, tt := range tests {
		if got := MatchIdentity(tt.pattern, tt.id); got != tt.want {
			t.Errorf("MatchIdentity(%q, %q) = %v, want %v", tt.pattern, tt.id, got, tt.want)
		}
	}
}

func TestProtoRoundTrip(t *testing.T) {
	def := Default(policy.ClusterAuthenticated, cluster)
	ports := []Port{{Port: 8080, ServerKind: KindServer, ServerName: "web-http", Protocol: "HTTP/1", Authorizations: []Authorization{
		{Kind: KindAuthorizationPolicy, Name: "a", Identities: []string{webID},
			Networks: []Network{{Net: netip.MustParsePrefix("10.0.0.0/8"), Except: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}}}}}}
	gotDef, got, err := FromProto(ToProto(def, ports))
	if err != nil {
		t.Fatal(err)
	}
	if gotDef.ServerName != def.ServerName || len(gotDef.Authorizations) != 1 || gotDef.Authorizations[0].Networks[0].Net != cluster[0].Net {
		t.Errorf("default = %+v", gotDef)
	}
	p := got[8080]
	if p.ServerName != "web-http" || p.Authorize(netip.MustParseAddr("10.2.0.1"), webID) == nil || p.Authorize(netip.MustParseAddr("10.1.0.1"), webID) != nil {
		t.Errorf("port 8080 = %+v", p)
	}
	bad := ToProto(def, nil)
	bad.Default.Authorizations[0].Networks[0].Cidr = "10.0.0.0/99"
	if _, _, err := FromProto(bad); err == nil {
		t.Error("FromProto accepted a bad network")
	}
}
