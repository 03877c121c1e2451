package inboundpolicy

import (
	"fmt"

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
	m := &policyv1.PortPolicy{Port: uint32(p.Port), ServerKind: p.ServerKind, ServerName: p.ServerName, Protocol: p.Protocol}
	for _, a := range p.Authorizations {
		am := &policyv1.Authorization{Kind: a.Kind, Name: a.Name, Unauthenticated: a.Unauthenticated, Identities: a.Identities}
		for _, n := range a.Networks {
			nm := &policyv1.Network{Cidr: n.Net.String()}
			for _, e := range n.Except {
				nm.Except = append(nm.Except, e.String())
			}
			am.Networks = append(am.Networks, nm)
		}
		m.Authorizations = append(m.Authorizations, am)
	}
	return m
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
	for _, am := range m.GetAuthorizations() {
		a := Authorization{Kind: am.GetKind(), Name: am.GetName(), Unauthenticated: am.GetUnauthenticated(), Identities: am.GetIdentities()}
		for _, nm := range am.GetNetworks() {
			net, err := parsePrefix(nm.GetCidr())
			if err != nil {
				return Port{}, fmt.Errorf("authorization %q: network %q: %w", am.GetName(), nm.GetCidr(), err)
			}
			n := Network{Net: net}
			for _, e := range nm.GetExcept() {
				ep, err := parsePrefix(e)
				if err != nil {
					return Port{}, fmt.Errorf("authorization %q: except %q: %w", am.GetName(), e, err)
				}
				n.Except = append(n.Except, ep)
			}
			a.Networks = append(a.Networks, n)
		}
		p.Authorizations = append(p.Authorizations, a)
	}
	return p, nil
}
