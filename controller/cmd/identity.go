package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	ctlidentity "github.com/linkerd-go/linkerd/controller/identity"
	"github.com/linkerd-go/linkerd/controller/identity/kubetoken"
	"github.com/linkerd-go/linkerd/controller/identity/localtoken"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/pki"
	identityv1 "github.com/linkerd-go/linkerd/proto/identity/v1"
)

// Token modes (-token-mode).
const (
	tokenModeKubernetes = "kubernetes"
	tokenModeLocal      = "local"
)

// identityOptions are the identity subcommand's flags.
type identityOptions struct {
	addr             string
	adminAddr        string
	issuerDir        string
	identityScheme   string
	trustAnchors     string
	trustDomain      string
	controllerNS     string
	issuanceLifetime time.Duration
	clockSkew        time.Duration
	tokenMode        string
	localTokenKey    string
	kubeconfig       string
	log              *logFlags

	// pollInterval overrides the issuer poll interval (tests).
	pollInterval time.Duration
}

func (o *identityOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.addr, "addr", ":8080", "address to serve the identity gRPC API on")
	fs.StringVar(&o.adminAddr, "admin-addr", ":9990", "address to serve /metrics, /ready and /live on")
	fs.StringVar(&o.issuerDir, "issuer-dir", "/var/run/linkerd/identity/issuer", "directory holding the issuer certificate and key (the linkerd-identity-issuer Secret)")
	fs.StringVar(&o.issuerDir, "issuer", "/var/run/linkerd/identity/issuer", "alias of -issuer-dir")
	fs.StringVar(&o.identityScheme, "identity-scheme", identity.IssuerSchemeLinkerd, "issuer Secret layout: linkerd.io/tls (crt.pem, key.pem) or kubernetes.io/tls (tls.crt, tls.key)")
	fs.StringVar(&o.trustAnchors, "trust-anchors", "/var/run/linkerd/identity/trust-roots/ca-bundle.crt", "PEM bundle of the trust anchors the issuer must chain to")
	fs.StringVar(&o.trustDomain, "identity-trust-domain", "cluster.local", "trust domain of the mesh's identities")
	fs.StringVar(&o.controllerNS, "controller-namespace", "linkerd", "namespace of the control plane")
	fs.DurationVar(&o.issuanceLifetime, "identity-issuance-lifetime", pki.DefaultLeafLifetime, "lifetime of issued certificates")
	fs.DurationVar(&o.clockSkew, "identity-clock-skew-allowance", pki.DefaultClockSkew, "how far issued certificates are backdated to tolerate clock skew")
	fs.StringVar(&o.tokenMode, "token-mode", tokenModeKubernetes, "how proxies' tokens are checked: kubernetes (TokenReview) or local (HMAC tokens, see -local-token-key)")
	fs.StringVar(&o.localTokenKey, "local-token-key", "", "file holding the HMAC key of local tokens (-token-mode=local)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (-token-mode=kubernetes); empty means the in-cluster configuration")
	o.log = addLogFlags(fs)
}

func newIdentityCommand(env Env) *cobra.Command {
	return componentCommand(env, "identity", "Run the identity service, the mesh's certificate authority",
		func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error)) {
			o := &identityOptions{}
			o.addFlags(fs)
			return o.log, func(log *slog.Logger) (component, error) { return newIdentityComponent(o, log) }
		})
}

// identityComponent is a configured identity service.
type identityComponent struct {
	log      *slog.Logger
	reg      *prometheus.Registry
	server   *ctlidentity.Server
	watcher  *ctlidentity.Watcher
	opts     *identityOptions
	lis      net.Listener
	adminLis net.Listener
}

func newIdentityComponent(o *identityOptions, log *slog.Logger) (*identityComponent, error) {
	files, err := ctlidentity.IssuerFilesInDir(o.issuerDir, o.identityScheme, o.trustAnchors)
	if err != nil {
		return nil, usageError{err}
	}
	validator, err := o.tokenValidator()
	if err != nil {
		return nil, err
	}
	reg := newRegistry()
	metrics, err := ctlidentity.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	server, err := ctlidentity.NewServer(ctlidentity.Config{
		TrustDomain:         o.trustDomain,
		ControllerNamespace: o.controllerNS,
		IssuanceLifetime:    o.issuanceLifetime,
		ClockSkewAllowance:  o.clockSkew,
		Validator:           validator,
		Metrics:             metrics,
		Logger:              log,
	})
	if err != nil {
		return nil, usageError{err}
	}
	watcher, err := ctlidentity.NewWatcher(ctlidentity.WatcherConfig{
		Files:    files,
		Interval: o.pollInterval,
		OnLoad:   server.SetIssuer,
		Metrics:  metrics,
		Logger:   log,
	})
	if err != nil {
		return nil, err
	}
	return &identityComponent{log: log, reg: reg, server: server, watcher: watcher, opts: o}, nil
}

func (o *identityOptions) tokenValidator() (ctlidentity.TokenValidator, error) {
	switch o.tokenMode {
	case tokenModeKubernetes:
		client, err := k8s.NewClientset(o.kubeconfig, "linkerd-identity")
		if err != nil {
			return nil, err
		}
		return &kubetoken.Validator{Client: client, ControllerNamespace: o.controllerNS, TrustDomain: o.trustDomain}, nil
	case tokenModeLocal:
		if o.localTokenKey == "" {
			return nil, usageError{errors.New("-token-mode=local needs -local-token-key")}
		}
		key, err := localtoken.LoadKey(o.localTokenKey)
		if err != nil {
			return nil, err
		}
		return &localtoken.Issuer{Key: key, ControllerNamespace: o.controllerNS, TrustDomain: o.trustDomain}, nil
	}
	return nil, usageError{fmt.Errorf("unknown -token-mode %q (want %s or %s)", o.tokenMode, tokenModeKubernetes, tokenModeLocal)}
}

// listen binds the gRPC and admin addresses.
func (c *identityComponent) listen() (err error) {
	c.lis, c.adminLis, err = listenPair(c.opts.addr, c.opts.adminAddr)
	return err
}

// run serves until ctx is done (then drains and returns nil) or a server
// fails. It loads the issuer first but starts without one if that fails,
// staying unready until the watcher loads a valid issuer. SIGHUP reloads
// the issuer at once.
func (c *identityComponent) run(ctx context.Context) error {
	if _, err := c.watcher.Reload(); err != nil {
		c.log.Warn("starting without an issuer; retrying in the background")
	}

	gs := grpc.NewServer()
	identityv1.RegisterIdentityServer(gs, c.server)
	c.log.Info("identity service started",
		"addr", c.lis.Addr().String(), "admin_addr", c.adminLis.Addr().String(),
		"trust_domain", c.opts.trustDomain, "controller_namespace", c.opts.controllerNS,
		"token_mode", c.opts.tokenMode, "issuance_lifetime", c.opts.issuanceLifetime.String())

	return runGroup(ctx, c.log, func() { stopGRPC(gs, shutdownGrace) },
		func(context.Context) error {
			if err := gs.Serve(c.lis); err != nil {
				return fmt.Errorf("identity gRPC server: %w", err)
			}
			return nil
		},
		serveAdmin(c.adminLis, c.reg, c.server.Ready, c.log),
		c.watcher.Run,
		func(ctx context.Context) error {
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-hup:
					c.log.Info("SIGHUP: reloading issuer")
					c.watcher.Trigger()
				}
			}
		},
	)
}

// stopGRPC stops gs gracefully, forcibly after grace.
func stopGRPC(gs *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		gs.Stop()
		<-done
	}
}
