package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"k8s.io/client-go/dynamic"

	"github.com/linkerd-go/linkerd/controller/destination"
	controllerpolicy "github.com/linkerd-go/linkerd/controller/policy"
	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
)

// DefaultClusterNetworks are install's clusterNetworks.
const DefaultClusterNetworks = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8"

// policyOptions are the policy subcommand's flags.
type policyOptions struct {
	addr, adminAddr string
	controllerNS    string
	trustDomain     string
	clusterNetworks string
	defaultPolicy   string
	kubeconfig      string
	localStore      string
	log             *logFlags
}

func (o *policyOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.addr, "addr", fmt.Sprintf(":%d", k8s.PolicyGRPCPort), "address to serve the inbound policy gRPC API on")
	fs.StringVar(&o.adminAddr, "admin-addr", ":9990", "address to serve /metrics, /ready and /live on")
	fs.StringVar(&o.controllerNS, "controller-namespace", destination.DefaultControllerNamespace, "namespace of the control plane (part of service account identities)")
	fs.StringVar(&o.trustDomain, "identity-trust-domain", destination.DefaultTrustDomain, "trust domain of the mesh's identities")
	fs.StringVar(&o.clusterNetworks, "cluster-networks", DefaultClusterNetworks, "the cluster's networks (cluster-* default policies)")
	fs.StringVar(&o.defaultPolicy, "default-policy", policy.AllUnauthenticated, "default inbound policy when no annotation sets one")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster configuration (not with -local-store)")
	fs.StringVar(&o.localStore, "local-store", "", "serve from the Kubernetes manifests in this directory instead of a cluster")
	o.log = addLogFlags(fs)
}

func newPolicyCommand(env Env) *cobra.Command {
	return componentCommand(env, "policy", "Run the policy controller, the proxies' inbound authorization policy",
		func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error)) {
			o := &policyOptions{}
			o.addFlags(fs)
			return o.log, func(log *slog.Logger) (component, error) { return newPolicyComponent(o, log) }
		})
}

// policyComponent is a configured policy controller.
type policyComponent struct {
	opts          *policyOptions
	log           *slog.Logger
	reg           *prometheus.Registry
	pods          store.Store
	dyn           dynamic.Interface
	server        *controllerpolicy.Server
	lis, adminLis net.Listener
}

func newPolicyComponent(o *policyOptions, log *slog.Logger) (*policyComponent, error) {
	if !policy.ValidDefaultPolicy(o.defaultPolicy) {
		return nil, usageError{fmt.Errorf("-default-policy: %q is not one of %v", o.defaultPolicy, policy.DefaultPolicies)}
	}
	nets, err := inboundpolicy.ParseNetworks(o.clusterNetworks)
	if err != nil {
		return nil, usageError{fmt.Errorf("-cluster-networks: %w", err)}
	}
	c := &policyComponent{opts: o, log: log, reg: newRegistry()}
	if o.localStore != "" {
		if o.kubeconfig != "" {
			return nil, usageError{errors.New("-kubeconfig and -local-store are mutually exclusive")}
		}
		if c.pods, err = store.NewLocal(o.localStore, 0, log); err != nil {
			return nil, usageError{err}
		}
	} else {
		client, err := k8s.NewClientset(o.kubeconfig, "linkerd-policy")
		if err != nil {
			return nil, err
		}
		if c.pods, err = store.NewKube(client, 0, log); err != nil {
			return nil, err
		}
		if c.dyn, err = k8s.NewDynamic(o.kubeconfig, "linkerd-policy"); err != nil {
			return nil, err
		}
	}
	c.server = &controllerpolicy.Server{
		Index: controllerpolicy.NewIndex(),
		Pods:  c.pods,
		Log:   log,
		Config: inboundpolicy.Config{
			DefaultPolicy: o.defaultPolicy, ClusterNetworks: nets,
			TrustDomain: o.trustDomain, ControllerNamespace: o.controllerNS,
		},
	}
	c.pods.AddHandler(c.server.OnStoreEvent)
	return c, nil
}

func (c *policyComponent) listen() (err error) {
	c.lis, c.adminLis, err = listenPair(c.opts.addr, c.opts.adminAddr)
	return err
}

// run serves until ctx is done or a part fails; /ready turns 200 once the
// policy resources and pods are loaded.
func (c *policyComponent) run(ctx context.Context) error {
	gs := grpc.NewServer()
	policyv1.RegisterInboundPolicyServer(gs, c.server)
	c.log.Info("policy controller started", "addr", c.lis.Addr().String(), "admin_addr", c.adminLis.Addr().String(),
		"default_policy", c.opts.defaultPolicy)
	watch := func(ctx context.Context) error {
		if c.dyn != nil {
			return controllerpolicy.WatchKube(ctx, c.dyn, c.server.Index, c.log)
		}
		return controllerpolicy.WatchDir(ctx, c.opts.localStore, controllerpolicy.PollInterval, c.server.Index, c.log)
	}
	ready := func() bool { return c.server.Ready() && c.pods.HasSynced() }
	return runGroup(ctx, c.log, gs.Stop,
		func(ctx context.Context) error {
			if err := c.pods.Run(ctx); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			return nil
		},
		watch,
		func(context.Context) error {
			if err := gs.Serve(c.lis); err != nil {
				return fmt.Errorf("policy gRPC server: %w", err)
			}
			return nil
		},
		serveAdmin(c.adminLis, c.reg, ready, c.log),
	)
}
