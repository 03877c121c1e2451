package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/proxy/config"
	"github.com/linkerd-go/linkerd/viz/tap"
)

// tapOptions are the tap subcommand's flags.
type tapOptions struct {
	addr, adminAddr string
	controllerNS    string
	trustDomain     string
	identityAddr    string
	localName       string
	tokenFile       string
	trustAnchors    string
	tapPort         int
	kubeconfig      string
	podsFile        string
	log             *logFlags
}

func (o *tapOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8088", "address to serve the tap API (gRPC) on; the loopback keeps it to port-forwards through the Kubernetes API")
	fs.StringVar(&o.adminAddr, "admin-addr", ":9998", "address to serve /metrics, /ready and /live on")
	fs.StringVar(&o.controllerNS, "controller-namespace", k8s.ControlPlaneNamespace, "namespace of the control plane (its identity service and trust anchors)")
	fs.StringVar(&o.trustDomain, "trust-domain", "cluster.local", "the mesh's identity trust domain")
	fs.StringVar(&o.identityAddr, "identity-addr", "", "identity service address (default linkerd-identity-headless.<controller-namespace>.svc.<trust-domain>.:8080)")
	fs.StringVar(&o.localName, "identity-local-name", "", "the tap service's identity (required), LINKERD2_PROXY_TAP_SVC_NAME of the proxies")
	fs.StringVar(&o.tokenFile, "token-file", "/var/run/secrets/tokens/linkerd-identity-token", "ServiceAccount token proving the tap service's identity")
	fs.StringVar(&o.trustAnchors, "trust-anchors", "", "trust anchors PEM file; empty means the "+k8s.TrustRootsConfigMapName+" ConfigMap of the control plane")
	fs.IntVar(&o.tapPort, "tap-port", tap.DefaultPort, "the proxies' tap port")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster configuration")
	fs.StringVar(&o.podsFile, "pods-file", "", "resolve resources to pods from this JSON file of pods (the local mesh's) instead of the Kubernetes API; needs -trust-anchors")
	o.log = addLogFlags(fs)
}

func newTapCommand(env Env) *cobra.Command {
	return componentCommand(env, "tap", "Run viz's tap service: taps a resource's pods' proxies and streams their requests",
		func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error)) {
			o := &tapOptions{}
			o.addFlags(fs)
			return o.log, func(log *slog.Logger) (component, error) { return newTapComponent(o, log) }
		})
}

// tapComponent is a configured tap service.
type tapComponent struct {
	opts     *tapOptions
	log      *slog.Logger
	reg      *prometheus.Registry
	kube     kubernetes.Interface
	lis      net.Listener
	adminLis net.Listener
}

func newTapComponent(o *tapOptions, log *slog.Logger) (*tapComponent, error) {
	if o.localName == "" {
		return nil, usageError{errors.New("-identity-local-name is required")}
	}
	if o.tapPort <= 0 || o.tapPort > 65535 {
		return nil, usageError{fmt.Errorf("-tap-port %d is not a port", o.tapPort)}
	}
	if o.podsFile != "" {
		if o.trustAnchors == "" {
			return nil, usageError{errors.New("-pods-file needs -trust-anchors")}
		}
		return &tapComponent{opts: o, log: log, reg: newRegistry()}, nil
	}
	kube, err := k8s.NewClientset(o.kubeconfig, "linkerd-tap")
	if err != nil {
		return nil, err
	}
	return &tapComponent{opts: o, log: log, reg: newRegistry(), kube: kube}, nil
}

func (c *tapComponent) listen() (err error) {
	c.lis, c.adminLis, err = listenPair(c.opts.addr, c.opts.adminAddr)
	return err
}

// anchors reads the trust anchors: the file, or the control plane's
// ConfigMap (retried until ctx ends, the control plane may be starting).
func (c *tapComponent) anchors(ctx context.Context) (string, error) {
	if c.opts.trustAnchors != "" {
		b, err := os.ReadFile(c.opts.trustAnchors)
		if err != nil {
			return "", fmt.Errorf("trust anchors: %w", err)
		}
		return string(b), nil
	}
	for {
		cm, err := c.kube.CoreV1().ConfigMaps(c.opts.controllerNS).Get(ctx, k8s.TrustRootsConfigMapName, metav1.GetOptions{})
		if err == nil && cm.Data[k8s.TrustRootsKey] != "" {
			return cm.Data[k8s.TrustRootsKey], nil
		}
		if err == nil {
			err = fmt.Errorf("no %s in it", k8s.TrustRootsKey)
		}
		c.log.Warn("reading the trust anchors; retrying", "configmap", c.opts.controllerNS+"/"+k8s.TrustRootsConfigMapName, "error", err)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

// run serves until ctx is done.
func (c *tapComponent) run(ctx context.Context) error {
	o := c.opts
	anchors, err := c.anchors(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	idAddr := o.identityAddr
	if idAddr == "" {
		idAddr = fmt.Sprintf("linkerd-identity-headless.%s.svc.%s.:8080", o.controllerNS, o.trustDomain)
	}
	id, err := tap.NewClientIdentity(config.Identity{
		Enabled:         true,
		SvcAddr:         idAddr,
		SvcName:         identity.Name("linkerd-identity", o.controllerNS, o.controllerNS, o.trustDomain),
		LocalName:       o.localName,
		TokenFile:       o.tokenFile,
		TrustAnchorsPEM: anchors,
		MinRefresh:      10 * time.Second,
		MaxRefresh:      24 * time.Hour,
	}, c.log)
	if err != nil {
		return usageError{err}
	}
	var pods tap.PodResolver = &tap.Resolver{Client: c.kube, ControlPlaneNamespace: o.controllerNS, TrustDomain: o.trustDomain, Port: o.tapPort}
	if o.podsFile != "" {
		pods = &tap.FileResolver{Path: o.podsFile}
	}
	server := &tap.Server{Pods: pods, TLS: id.TLS, Log: c.log}
	gs := grpc.NewServer()
	vizv1.RegisterTapServiceServer(gs, server)
	c.log.Info("tap service started", "addr", c.lis.Addr().String(), "admin_addr", c.adminLis.Addr().String(), "identity", o.localName)
	return runGroup(ctx, c.log, gs.Stop,
		id.Run,
		func(context.Context) error {
			if err := gs.Serve(c.lis); err != nil {
				return fmt.Errorf("tap gRPC server: %w", err)
			}
			return nil
		},
		serveAdmin(c.adminLis, c.reg, id.Ready, c.log),
	)
}
