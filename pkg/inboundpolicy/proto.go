package inboundpolicy

import (
	"fmt"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"

	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
)

// ToProto converts a workload's policy to its API message.
func ToProto(def Port, ports []Port) *policyv1.WorkloadPolicy {
	m := &policyv1.WorkloadPolicy{Default: portToProto(def)}
	for _, p := range ports {
		m.Ports = append(m.Ports, portToProto(p))
	}
	return m
}

func portToProto(p Port) *policyv1.PortPolicy {
	m := &policyv1.PortPolicy{Port: uint32(p.Port), ServerKind: p.ServerKind, ServerName: p.ServerName, Protocol: p.Protocol,
		Authorizations: authorizationsToProto(p.Authorizations)}
	for _, r := range p.Routes {
		rm := &policyv1.HTTPRoute{Group: r.Group, Name: r.Name, Authorizations: authorizationsToProto(r.Authorizations)}
		for _, mt := range r.Matches {
			rm.Matches = append(rm.Matches, &policyv1.RouteMatch{PathType: mt.PathType, Path: mt.Path, Method: mt.Method,
				Headers: headerMatchesToProto(mt.Headers), QueryParams: headerMatchesToProto(mt.QueryParams), Filters: mt.Filters})
		}
		m.Routes = append(m.Routes, rm)
	}
	return m
}

func headerMatchesToProto(hs []HeaderMatch) []*policyv1.HeaderMatch {
	var out []*policyv1.HeaderMatch
	for _, h := range hs {
		out = append(out, &policyv1.HeaderMatch{Type: h.Type, Name: h.Name, Value: h.Value})
	}
	return out
}

func authorizationsToProto(as []Authorization) []*policyv1.Authorization {
	var out []*policyv1.Authorization
	for _, a := range as {
		am := &policyv1.Authorization{Kind: a.Kind, Name: a.Name, Unauthenticated: a.Unauthenticated, Identities: a.Identities}
		for _, n := range a.Networks {
			nm := &policyv1.Network{Cidr: n.Net.String()}
			for _, e := range n.Except {
				nm.Except = append(nm.Except, e.String())
			}
			am.Networks = append(am.Networks, nm)
		}
		out = append(out, am)
	}
	return out
}

// FromProto converts an API message; a malformed one is an error (the
// proxy keeps its last good policy).
func FromProto(m *policyv1.WorkloadPolicy) (Port, map[uint16]Port, error) {
	if m.GetDefault() == nil {
		return Port{}, nil, fmt.Errorf("policy without a default")
	}
	def, err := portFromProto(m.GetDefault())
	if err != nil {
		return Port{}, nil, fmt.Errorf("default: %w", err)
	}
	ports := make(map[uint16]Port, len(m.GetPorts()))
	for _, pm := range m.GetPorts() {
		if pm.GetPort() == 0 || pm.GetPort() > 65535 {
			return Port{}, nil, fmt.Errorf("port %d out of range", pm.GetPort())
		}
		p, err := portFromProto(pm)
		if err != nil {
			return Port{}, nil, fmt.Errorf("port %d: %w", pm.GetPort(), err)
		}
		ports[p.Port] = p
	}
	return def, ports, nil
}

func portFromProto(m *policyv1.PortPolicy) (Port, error) {
	p := Port{Port: uint16(m.GetPort()), ServerKind: m.GetServerKind(), ServerName: m.GetServerName(), Protocol: m.GetProtocol()}
	var err error
	if p.Authorizations, err = authorizationsFromProto(m.GetAuthorizations()); err != nil {
		return Port{}, err
	}
	for _, rm := range m.GetRoutes() {
		r := Route{Group: rm.GetGroup(), Name: rm.GetName()}
		if r.Authorizations, err = authorizationsFromProto(rm.GetAuthorizations()); err != nil {
			return Port{}, fmt.Errorf("route %q: %w", rm.GetName(), err)
		}
		for _, mm := range rm.GetMatches() {
			switch mm.GetPathType() {
			case "", policy.PathMatchExact, policy.PathMatchPathPrefix, policy.PathMatchRegularExpression:
			default:
				return Port{}, fmt.Errorf("route %q: unknown path match type %q", rm.GetName(), mm.GetPathType())
			}
			r.Matches = append(r.Matches, RouteMatch{PathType: mm.GetPathType(), Path: mm.GetPath(), Method: mm.GetMethod(),
				Headers: headerMatchesFromProto(mm.GetHeaders()), QueryParams: headerMatchesFromProto(mm.GetQueryParams()), Filters: mm.GetFilters()})
		}
		if err := r.Compile(); err != nil {
			return Port{}, err
		}
		p.Routes = append(p.Routes, r)
	}
	return p, nil
}

func headerMatchesFromProto(ms []*policyv1.HeaderMatch) []HeaderMatch {
	var out []HeaderMatch
	for _, m := range ms {
		out = append(out, HeaderMatch{Type: m.GetType(), Name: m.GetName(), Value: m.GetValue()})
	}
	return out
}

func authorizationsFromProto(ams []*policyv1.Authorization) ([]Authorization, error) {
	var out []Authorization
	for _, am := range ams {
		a := Authorization{Kind: am.GetKind(), Name: am.GetName(), Unauthenticated: am.GetUnauthenticated(), Identities: am.GetIdentities()}
		for _, nm := range am.GetNetworks() {
			net, err := parsePrefix(nm.GetCidr())
			if err != nil {
				return nil, fmt.Errorf("authorization %q: network %q: %w", am.GetName(), nm.GetCidr(), err)
			}
			n := Network{Net: net}
			for _, e := range nm.GetExcept() {
				ep, err := parsePrefix(e)
				if err != nil {
					return nil, fmt.Errorf("authorization %q: except %q: %w", am.GetName(), e, err)
				}
				n.Except = append(n.Except, ep)
			}
			a.Networks = append(a.Networks, n)
		}
		out = append(out, a)
	}
	return out, nil
}
