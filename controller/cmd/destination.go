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

	"github.com/linkerd-go/linkerd/controller/destination"
	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
)

// destinationOptions are the destination subcommand's flags.
type destinationOptions struct {
	addr               string
	adminAddr          string
	controllerNS       string
	trustDomain        string
	clusterDomain      string
	defaultOpaquePorts string
	enableH2Upgrade    bool
	kubeconfig         string
	localStore         string
	log                *logFlags
}

func (o *destinationOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.addr, "addr", fmt.Sprintf(":%d", k8s.DestinationGRPCPort), "address to serve the destination gRPC API on")
	fs.StringVar(&o.adminAddr, "admin-addr", ":9996", "address to serve /metrics, /ready and /live on")
	fs.StringVar(&o.controllerNS, "controller-namespace", destination.DefaultControllerNamespace, "namespace of the control plane; pods labelled linkerd.io/control-plane-ns with it are meshed")
	fs.StringVar(&o.trustDomain, "identity-trust-domain", destination.DefaultTrustDomain, "trust domain of the mesh's identities")
	fs.StringVar(&o.clusterDomain, "cluster-domain", destination.DefaultClusterDomain, "Kubernetes cluster domain of Service names")
	fs.StringVar(&o.defaultOpaquePorts, "default-opaque-ports", k8s.DefaultOpaquePorts, "ports (and ranges) that are opaque unless a pod or Service annotation says otherwise")
	fs.BoolVar(&o.enableH2Upgrade, "enable-h2-upgrade", true, "hint proxies that meshed endpoints accept HTTP/2, so HTTP/1.1 between proxies is multiplexed over HTTP/2")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster configuration (not with -local-store)")
	fs.StringVar(&o.localStore, "local-store", "", "serve from the Kubernetes manifests in this directory instead of a cluster")
	o.log = addLogFlags(fs)
}

func newDestinationCommand(env Env) *cobra.Command {
	return componentCommand(env, "destination", "Run the destination service, the proxies' service discovery",
		func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error)) {
			o := &destinationOptions{}
			o.addFlags(fs)
			return o.log, func(log *slog.Logger) (component, error) { return newDestinationComponent(o, log) }
		})
}

// destinationComponent is a configured destination service.
type destinationComponent struct {
	opts     *destinationOptions
	log      *slog.Logger
	reg      *prometheus.Registry
	store    store.Store
	server   *destination.Server
	lis      net.Listener
	adminLis net.Listener
}

func newDestinationComponent(o *destinationOptions, log *slog.Logger) (*destinationComponent, error) {
	opaque, err := k8s.ParsePortSet(o.defaultOpaquePorts)
	if err != nil {
		return nil, usageError{fmt.Errorf("-default-opaque-ports: %w", err)}
	}
	if opaque == nil {
		opaque = k8s.PortSet{} // an empty list means no default opaque ports
	}
	var st store.Store
	if o.localStore != "" {
		if o.kubeconfig != "" {
			return nil, usageError{errors.New("-kubeconfig and -local-store are mutually exclusive")}
		}
		local, err := store.NewLocal(o.localStore, 0, log)
		if err != nil {
			return nil, usageError{err}
		}
		st = local
	} else {
		client, err := k8s.NewClientset(o.kubeconfig, "linkerd-destination")
		if err != nil {
			return nil, err
		}
		kube, err := store.NewKube(client, 0, log)
		if err != nil {
			return nil, err
		}
		dyn, err := k8s.NewDynamic(o.kubeconfig, "linkerd-destination")
		if err != nil {
			return nil, err
		}
		if err := kube.WatchProfiles(dyn, 0); err != nil {
			return nil, err
		}
		if err := kube.WatchRoutes(dyn, client.Discovery(), 0); err != nil {
			return nil, err
		}
		st = kube
	}
	reg := newRegistry()
	server, err := destination.NewServer(st, destination.Config{
		ControllerNamespace: o.controllerNS,
		TrustDomain:         o.trustDomain,
		ClusterDomain:       o.clusterDomain,
		DefaultOpaquePorts:  opaque,
		DisableH2Upgrade:    !o.enableH2Upgrade,
		Log:                 log,
		Registerer:          reg,
	})
	if err != nil {
		return nil, err
	}
	return &destinationComponent{opts: o, log: log, reg: reg, store: st, server: server}, nil
}

// listen binds the gRPC and admin addresses.
func (c *destinationComponent) listen() (err error) {
	c.lis, c.adminLis, err = listenPair(c.opts.addr, c.opts.adminAddr)
	return err
}

// run serves until ctx is done (then stops and returns nil) or a part
// fails. /ready turns 200 once the store has loaded its initial state.
func (c *destinationComponent) run(ctx context.Context) error {
	gs := grpc.NewServer()
	destinationv1.RegisterDestinationServer(gs, c.server)
	source := "kubernetes"
	if c.opts.localStore != "" {
		source = "local:" + c.opts.localStore
	}
	c.log.Info("destination service started",
		"addr", c.lis.Addr().String(), "admin_addr", c.adminLis.Addr().String(),
		"store", source, "controller_namespace", c.opts.controllerNS,
		"trust_domain", c.opts.trustDomain, "cluster_domain", c.opts.clusterDomain)

	// Get streams last as long as their clients: stop, do not drain.
	return runGroup(ctx, c.log, gs.Stop,
		func(ctx context.Context) error {
			if err := c.store.Run(ctx); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			return nil
		},
		c.server.Run,
		func(context.Context) error {
			if err := gs.Serve(c.lis); err != nil {
				return fmt.Errorf("destination gRPC server: %w", err)
			}
			return nil
		},
		serveAdmin(c.adminLis, c.reg, c.server.Ready, c.log),
	)
}
