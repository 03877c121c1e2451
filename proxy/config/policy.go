package config

import (
	"errors"
	"fmt"
	"net"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// DefaultClusterNetworks are install's clusterNetworks.
const DefaultClusterNetworks = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8"

// Policy configures inbound authorization.
type Policy struct {
	// SvcAddr is the policy controller; empty: the default policy only.
	SvcAddr, SvcName string
	// Workload identifies the pod to the controller ({"ns":..,"pod":..}).
	Workload string
	// ClusterNetworks are the cluster-* default policies' networks.
	ClusterNetworks []inboundpolicy.Network
	// DefaultPolicy applies before the controller's first answer, and
	// without a controller.
	DefaultPolicy string
	// RequireIdentityPorts accept only clients with a mesh identity.
	RequireIdentityPorts PortSet
}

func defaultPolicy() Policy {
	nets, _ := inboundpolicy.ParseNetworks(DefaultClusterNetworks)
	return Policy{DefaultPolicy: policy.AllUnauthenticated, ClusterNetworks: nets}
}

func (p *envParser) parsePolicy(c *Config) {
	pc := &c.Policy
	p.parse(proxyenv.PolicySvcAddr, func(v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("invalid address: %w", err)
		}
		pc.SvcAddr = v
		return nil
	})
	p.parse(proxyenv.PolicySvcName, func(v string) error { pc.SvcName = v; return nil })
	p.parse(proxyenv.PolicyWorkload, func(v string) error { pc.Workload = v; return nil })
	p.parse(proxyenv.PolicyClusterNetworks, func(v string) error {
		nets, err := inboundpolicy.ParseNetworks(v)
		if err != nil {
			return err
		}
		pc.ClusterNetworks = nets
		return nil
	})
	p.parse(proxyenv.InboundDefaultPolicy, func(v string) error {
		if !policy.ValidDefaultPolicy(v) {
			return fmt.Errorf("%q is not one of %v", v, policy.DefaultPolicies)
		}
		pc.DefaultPolicy = v
		return nil
	})
	p.portSet(proxyenv.InboundPortsRequireIdentity, &pc.RequireIdentityPorts)
	if pc.SvcAddr != "" && pc.SvcName == "" && !IsLoopbackAddr(pc.SvcAddr) {
		p.errs = append(p.errs, &EnvError{Name: proxyenv.PolicySvcName, Err: errors.New("required unless " + proxyenv.PolicySvcAddr + " is a loopback address")})
	}
	if pc.SvcAddr != "" && pc.Workload == "" {
		p.errs = append(p.errs, &EnvError{Name: proxyenv.PolicyWorkload, Err: errors.New("required with " + proxyenv.PolicySvcAddr)})
	}
}
