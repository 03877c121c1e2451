package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Default inbound policies (config.linkerd.io/default-inbound-policy, a
// Server's accessPolicy).
const (
	AllUnauthenticated     = "all-unauthenticated"
	AllAuthenticated       = "all-authenticated"
	ClusterUnauthenticated = "cluster-unauthenticated"
	ClusterAuthenticated   = "cluster-authenticated"
	Deny                   = "deny"
	Audit                  = "audit"
)

// DefaultPolicies lists the valid default policy names.
var DefaultPolicies = []string{AllUnauthenticated, AllAuthenticated, ClusterUnauthenticated, ClusterAuthenticated, Deny, Audit}

// ValidDefaultPolicy reports whether name is a default policy.
func ValidDefaultPolicy(name string) bool { return slices.Contains(DefaultPolicies, name) }

var portName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Decode strictly decodes one policy resource (YAML or JSON) and validates
// it: unknown fields, an unknown kind or version and invalid values are
// errors naming the field. It returns a *Server, *ServerAuthorization,
// *AuthorizationPolicy, *MeshTLSAuthentication, *NetworkAuthentication or
// *HTTPRoute (of policy.linkerd.io or gateway.networking.k8s.io).
func Decode(data []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, fmt.Errorf("decoding policy resource: %w", err)
	}
	group, version, _ := strings.Cut(tm.APIVersion, "/")
	if tm.Kind == KindHTTPRoute {
		return decodeHTTPRoute(data, group, version)
	}
	if group != GroupName {
		return nil, fmt.Errorf("apiVersion: %q is not in group %s", tm.APIVersion, GroupName)
	}
	versions, ok := Versions[tm.Kind]
	if !ok {
		return nil, fmt.Errorf("kind: unknown policy kind %q", tm.Kind)
	}
	if !slices.Contains(versions, version) {
		return nil, fmt.Errorf("apiVersion: %s %s is not served (versions: %s)", tm.Kind, version, strings.Join(versions, ", "))
	}
	var obj interface{ validate() error }
	switch tm.Kind {
	case KindServer:
		obj = &Server{}
	case KindServerAuthorization:
		obj = &ServerAuthorization{}
	case KindAuthorizationPolicy:
		obj = &AuthorizationPolicy{}
	case KindMeshTLSAuthentication:
		obj = &MeshTLSAuthentication{}
	case KindNetworkAuthentication:
		obj = &NetworkAuthentication{}
	}
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", tm.Kind, err)
	}
	if err := obj.validate(); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", tm.Kind, err)
	}
	return obj, nil
}

// Validate checks s, naming the field at fault.
func (s *Server) Validate() error { return s.validate() }

func (s *Server) validate() error {
	p := s.Spec.Port
	switch {
	case p.Type == intstr.Int && (p.IntVal < 1 || p.IntVal > 65535):
		return fmt.Errorf("spec.port: %d is not a port number (1-65535)", p.IntVal)
	case p.Type == intstr.String && (len(p.StrVal) > 15 || !portName.MatchString(p.StrVal)):
		return fmt.Errorf("spec.port: %q is not a container port name", p.StrVal)
	}
	switch s.Spec.ProxyProtocol {
	case "", ProtocolUnknown, ProtocolHTTP1, ProtocolHTTP2, ProtocolGRPC, ProtocolOpaque, ProtocolTLS:
	default:
		return fmt.Errorf("spec.proxyProtocol: %q is not one of unknown, HTTP/1, HTTP/2, gRPC, opaque, TLS", s.Spec.ProxyProtocol)
	}
	if s.Spec.AccessPolicy != "" && !ValidDefaultPolicy(s.Spec.AccessPolicy) {
		return fmt.Errorf("spec.accessPolicy: %q is not one of %s", s.Spec.AccessPolicy, strings.Join(DefaultPolicies, ", "))
	}
	if err := validSelector("spec.podSelector", s.Spec.PodSelector); err != nil {
		return err
	}
	if s.Spec.PodSelector == nil && s.Spec.ExternalWorkloadSelector == nil {
		return errors.New("spec.podSelector: required")
	}
	return nil
}

// Validate checks a, naming the field at fault.
func (a *ServerAuthorization) Validate() error { return a.validate() }

func (a *ServerAuthorization) validate() error {
	srv := a.Spec.Server
	if (srv.Name == "") == (srv.Selector == nil) {
		return errors.New("spec.server: exactly one of name and selector is required")
	}
	if err := validSelector("spec.server.selector", srv.Selector); err != nil {
		return err
	}
	c := a.Spec.Client
	if err := validNetworks("spec.client.networks", c.Networks); err != nil {
		return err
	}
	if c.Unauthenticated == (c.MeshTLS != nil) {
		return errors.New("spec.client: exactly one of unauthenticated and meshTLS is required")
	}
	if m := c.MeshTLS; m != nil {
		n := 0
		if m.UnauthenticatedTLS {
			n++
		}
		if len(m.Identities) > 0 {
			n++
		}
		if len(m.ServiceAccounts) > 0 {
			n++
		}
		if n != 1 {
			return errors.New("spec.client.meshTLS: exactly one of unauthenticatedTLS, identities and serviceAccounts is required")
		}
		for i, id := range m.Identities {
			if err := validIdentity(id); err != nil {
				return fmt.Errorf("spec.client.meshTLS.identities[%d]: %w", i, err)
			}
		}
		for i, sa := range m.ServiceAccounts {
			if sa.Name == "" {
				return fmt.Errorf("spec.client.meshTLS.serviceAccounts[%d].name: required", i)
			}
		}
	}
	return nil
}

// Validate checks p, naming the field at fault.
func (p *AuthorizationPolicy) Validate() error { return p.validate() }

func (p *AuthorizationPolicy) validate() error {
	t := p.Spec.TargetRef
	if t.Name == "" {
		return errors.New("spec.targetRef.name: required")
	}
	switch {
	case t.Kind == KindServer && groupIs(t.Group, GroupName):
	case t.Kind == KindHTTPRoute && (groupIs(t.Group, GroupName) || t.Group == "gateway.networking.k8s.io"):
	case t.Kind == KindNamespace && groupIs(t.Group, "core"):
		if t.Name != p.Namespace && p.Namespace != "" {
			return fmt.Errorf("spec.targetRef.name: a policy may only target its own namespace %q", p.Namespace)
		}
	default:
		return fmt.Errorf("spec.targetRef.kind: %s %q cannot be targeted (Server, HTTPRoute or Namespace)", t.Group, t.Kind)
	}
	// Every authentication must hold: one identity authentication and one
	// network authentication at most, as in Linkerd.
	var idRef, netRef = -1, -1
	for i, r := range p.Spec.RequiredAuthenticationRefs {
		if r.Name == "" {
			return fmt.Errorf("spec.requiredAuthenticationRefs[%d].name: required", i)
		}
		prev := &idRef
		switch {
		case r.Kind == KindMeshTLSAuthentication && groupIs(r.Group, GroupName):
		case r.Kind == KindNetworkAuthentication && groupIs(r.Group, GroupName):
			prev = &netRef
		case r.Kind == KindServiceAccount && groupIs(r.Group, "core"):
		default:
			return fmt.Errorf("spec.requiredAuthenticationRefs[%d].kind: %q is not MeshTLSAuthentication, NetworkAuthentication or ServiceAccount", i, r.Kind)
		}
		if *prev >= 0 {
			return fmt.Errorf("spec.requiredAuthenticationRefs[%d]: %s %q: only one identity authentication (MeshTLSAuthentication or ServiceAccount) and one NetworkAuthentication may be required (already %q)",
				i, r.Kind, r.Name, p.Spec.RequiredAuthenticationRefs[*prev].Name)
		}
		*prev = i
	}
	return nil
}

// Validate checks m, naming the field at fault.
func (m *MeshTLSAuthentication) Validate() error { return m.validate() }

func (m *MeshTLSAuthentication) validate() error {
	if (len(m.Spec.Identities) == 0) == (len(m.Spec.IdentityRefs) == 0) {
		return errors.New("spec: exactly one of identities and identityRefs is required")
	}
	for i, id := range m.Spec.Identities {
		if err := validIdentity(id); err != nil {
			return fmt.Errorf("spec.identities[%d]: %w", i, err)
		}
	}
	for i, r := range m.Spec.IdentityRefs {
		if r.Kind != KindServiceAccount && r.Kind != KindNamespace {
			return fmt.Errorf("spec.identityRefs[%d].kind: %q is not ServiceAccount or Namespace", i, r.Kind)
		}
		if r.Name == "" && r.Kind == KindServiceAccount {
			return fmt.Errorf("spec.identityRefs[%d].name: required", i)
		}
	}
	return nil
}

// Validate checks n, naming the field at fault.
func (n *NetworkAuthentication) Validate() error { return n.validate() }

func (n *NetworkAuthentication) validate() error {
	if len(n.Spec.Networks) == 0 {
		return errors.New("spec.networks: required")
	}
	return validNetworks("spec.networks", n.Spec.Networks)
}

func groupIs(g, want string) bool {
	return g == want || (want == "core" && g == "") || (want == GroupName && g == "")
}

func validSelector(field string, s *metav1.LabelSelector) error {
	if s == nil {
		return nil
	}
	if _, err := metav1.LabelSelectorAsSelector(s); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func validNetworks(field string, nets []Network) error {
	for i, n := range nets {
		if _, err := netip.ParsePrefix(n.CIDR); err != nil {
			if _, err2 := netip.ParseAddr(n.CIDR); err2 != nil {
				return fmt.Errorf("%s[%d].cidr: %q is not a CIDR", field, i, n.CIDR)
			}
		}
		for j, e := range n.Except {
			if _, err := netip.ParsePrefix(e); err != nil {
				if _, err2 := netip.ParseAddr(e); err2 != nil {
					return fmt.Errorf("%s[%d].except[%d]: %q is not a CIDR", field, i, j, e)
				}
			}
		}
	}
	return nil
}

// validIdentity accepts "*", "*.suffix" and DNS-like names.
func validIdentity(id string) error {
	if id == "*" {
		return nil
	}
	name := strings.TrimPrefix(id, "*.")
	if name == "" || strings.Contains(name, "*") {
		return fmt.Errorf("%q cannot match an identity (a wildcard is only allowed as \"*\" or a leading \"*.\")", id)
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || !portNameLike(l) {
			return fmt.Errorf("%q is not a DNS-like identity", id)
		}
	}
	return nil
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$`)

func portNameLike(l string) bool { return len(l) <= 63 && dnsLabel.MatchString(strings.ToLower(l)) }

// Selects reports whether sel selects set; a nil selector selects nothing,
// an empty one everything.
func Selects(sel *metav1.LabelSelector, set map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(set))
}
