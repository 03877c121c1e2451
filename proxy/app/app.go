// Package app assembles the proxy: listeners for inbound, outbound and admin,
// the metrics registry, and graceful shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/linkerd-go/linkerd/pkg/proxyenv"
	"github.com/linkerd-go/linkerd/proxy/admin"
	"github.com/linkerd-go/linkerd/proxy/authz"
	"github.com/linkerd-go/linkerd/proxy/config"
	"github.com/linkerd-go/linkerd/proxy/discovery"
	"github.com/linkerd-go/linkerd/proxy/identity"
	"github.com/linkerd-go/linkerd/proxy/inbound"
	"github.com/linkerd-go/linkerd/proxy/internal/memtrim"
	"github.com/linkerd-go/linkerd/proxy/meshtls"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/outbound"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/route"
	"github.com/linkerd-go/linkerd/proxy/tap"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// Options are the proxy's run-time inputs besides its configuration.
type Options struct {
	Environ  []string       // shown on /env.json
	LogLevel *slog.LevelVar // changed by /proxy-log-level
	Logger   *slog.Logger
}

// Proxy is a running proxy.
type Proxy struct {
	cfg     *config.Config
	opts    Options
	metrics *metrics.Registry
	ready   atomic.Bool

	inbound  *inbound.Proxy
	outbound *outbound.Proxy
	identity *identity.Identity // nil when identity is disabled

	dstConn   *grpc.ClientConn  // nil without a destination service
	discovery *discovery.Client // nil without a destination service
	profiles  *route.Client     // nil without a destination service
	// Inbound authorization policy; policyClient nil without a policy controller.
	policies     *authz.Policies
	policyConn   *grpc.ClientConn
	policyClient *authz.Client

	inLn, adminLn net.Listener
	// The tap API (control port), when tap is enabled.
	tapLn      net.Listener
	tapServer  *tap.Server
	tlsConfigs *meshtls.Configs
	outLns     []net.Listener
}

// New binds every listener, so a port conflict fails at start.
func New(cfg *config.Config, opts Options) (*Proxy, error) {
	p := &Proxy{cfg: cfg, opts: opts, metrics: metrics.NewRegistry()}
	var err error
	if p.adminLn, err = net.Listen("tcp", cfg.AdminListenAddr); err != nil {
		return nil, fmt.Errorf("admin listener (LINKERD2_PROXY_ADMIN_LISTEN_ADDR): %w", err)
	}
	if p.inLn, err = net.Listen("tcp", cfg.InboundListenAddr); err != nil {
		p.closeListeners()
		return nil, fmt.Errorf("inbound listener (LINKERD2_PROXY_INBOUND_LISTEN_ADDR): %w", err)
	}
	for _, a := range cfg.OutboundListenAddrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			p.closeListeners()
			return nil, fmt.Errorf("outbound listener (LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS) %s: %w", a, err)
		}
		p.outLns = append(p.outLns, ln)
	}
	log := opts.Logger
	var tlsConfigs *meshtls.Configs
	if cfg.Identity.Enabled {
		if p.identity, err = identity.New(cfg.Identity, p.metrics, log); err != nil {
			p.closeListeners()
			return nil, err
		}
		tlsConfigs = meshtls.New(p.identity)
	} else {
		log.Warn("identity is not configured: no mTLS between proxies")
	}
	var resolver discovery.Resolver = discovery.OriginalDst{NoTLSReason: "not_provided_by_service_discovery"}
	if d := cfg.Destination; d.SvcAddr != "" {
		if p.dstConn, err = dialControlPlane(d.SvcAddr, d.SvcName, tlsConfigs); err != nil {
			p.closeListeners()
			return nil, fmt.Errorf("%s: %w", proxyenv.DestinationSvcAddr, err)
		}
		p.discovery = discovery.NewClient(p.dstConn, discovery.ClientOptions{
			Context: d.Context, Suffixes: d.Suffixes, Networks: d.Networks, IdleTimeout: d.IdleTimeout,
			Fallback: resolver, Logger: log,
		})
		resolver = p.discovery
		p.profiles = route.NewClient(p.dstConn, route.ClientOptions{
			Context: d.Context, Key: p.discovery.LookupKey, IdleTimeout: d.IdleTimeout, Logger: log,
		})
	}
	if cfg.StaticEndpoints != "" {
		if resolver, err = discovery.ParseStatic(cfg.StaticEndpoints, resolver); err != nil {
			p.closeListeners()
			return nil, fmt.Errorf("%s: %w", proxyenv.StaticEndpoints, err)
		}
	}
	// Tap: only for the tap service's identity, over mTLS.
	var inTap, outTap pipeline.Layer
	if cfg.TapSvcName != "" && tlsConfigs != nil {
		if p.tapLn, err = net.Listen("tcp", cfg.ControlListenAddr); err != nil {
			p.closeListeners()
			return nil, fmt.Errorf("tap listener: %w", err)
		}
		hub := tap.NewHub(p.metrics)
		p.tapServer = &tap.Server{Hub: hub, Identity: cfg.TapSvcName, Metrics: p.metrics, Logger: log}
		p.tlsConfigs = tlsConfigs
		inTap = &tap.Layer{Hub: hub, Direction: transport.Inbound}
		outTap = &tap.Layer{Hub: hub, Direction: transport.Outbound}
	}
	if p.policies, err = authz.NewPolicies(cfg.Policy.DefaultPolicy, cfg.Policy.ClusterNetworks, p.metrics); err != nil {
		p.closeListeners()
		return nil, fmt.Errorf("%s: %w", proxyenv.InboundDefaultPolicy, err)
	}
	p.policies.RequireIdentity = cfg.Policy.RequireIdentityPorts.Contains
	if pc := cfg.Policy; pc.SvcAddr != "" {
		if p.policyConn, err = dialControlPlane(pc.SvcAddr, pc.SvcName, tlsConfigs); err != nil {
			p.closeListeners()
			return nil, fmt.Errorf("%s: %w", proxyenv.PolicySvcAddr, err)
		}
		p.policyClient = &authz.Client{Conn: p.policyConn, Workload: pc.Workload, Policies: p.policies, Logger: log}
	}
	p.inbound = inbound.New(inbound.Config{
		OpaquePorts:    cfg.InboundOpaquePorts.Contains,
		DetectTimeout:  cfg.InboundDetectTimeout,
		ConnectTimeout: cfg.InboundConnectTimeout,
		TLS:            tlsConfigs,
		Identity:       cfg.Identity.LocalName,
		Tap:            inTap,
		Authz:          p.policies,
	}, p.metrics, log)
	// Until discovery supplies per-destination protocol hints, the outbound
	// side treats destination's default opaque ports as opaque.
	defaultOpaque, err := config.ParsePortSet(config.DefaultOpaquePorts)
	if err != nil {
		p.closeListeners()
		return nil, fmt.Errorf("default opaque ports: %w", err)
	}
	var routeLayer pipeline.Layer
	if p.profiles != nil {
		routeLayer = &route.Layer{Profiles: p.profiles, Registry: p.metrics}
	}
	p.outbound = outbound.New(outbound.Config{
		DetectTimeout:  cfg.OutboundDetectTimeout,
		ConnectTimeout: cfg.OutboundConnectTimeout,
		OpaquePorts:    defaultOpaque.Contains,
		Resolver:       resolver,
		TLS:            tlsConfigs,
		IngressMode:    cfg.IngressMode,
		H2Upgrade:      cfg.OutboundH2Upgrade,
		H2Connections:  cfg.OutboundH2Connections,
		Tap:            outTap,
		Route:          routeLayer,
	}, p.metrics, log)
	return p, nil
}

func (p *Proxy) closeListeners() {
	for _, ln := range append([]net.Listener{p.adminLn, p.inLn, p.tapLn}, p.outLns...) {
		if ln != nil {
			ln.Close()
		}
	}
}

// Metrics returns the proxy's registry.
func (p *Proxy) Metrics() *metrics.Registry { return p.metrics }

// InboundAddr, OutboundAddr and AdminAddr are the bound listener addresses.
func (p *Proxy) InboundAddr() net.Addr  { return p.inLn.Addr() }
func (p *Proxy) OutboundAddr() net.Addr { return p.outLns[0].Addr() }
func (p *Proxy) AdminAddr() net.Addr    { return p.adminLn.Addr() }

// startupTrimDelay is how long after it is ready the proxy gives back its
// start-up pages: identity and discovery have started by then.
const startupTrimDelay = 3 * time.Second

// Run serves until ctx is done or /shutdown is called, then drains: listeners
// close at once, in-flight HTTP requests and TCP streams get up to
// ShutdownGracePeriod to finish.
func (p *Proxy) Run(ctx context.Context) error {
	log := p.opts.Logger
	ctx, shutdown := context.WithCancel(ctx)
	defer shutdown()

	if p.identity != nil {
		idDone := make(chan struct{})
		defer func() { <-idDone }()
		go func() {
			defer close(idDone)
			if err := p.identity.Run(ctx); err != nil {
				log.Error("identity failed", "err", err)
				shutdown()
			}
		}()
	}
	ready := func() bool { return p.ready.Load() && (p.identity == nil || p.identity.Ready()) }

	adminSrv := &http.Server{
		Handler: admin.NewHandler(admin.Options{
			Gatherer:        p.metrics.Gatherer(),
			Ready:           ready,
			ShutdownEnabled: p.cfg.ShutdownEndpointEnabled,
			Shutdown: func() {
				log.Info("shutdown requested through the admin endpoint")
				shutdown()
			},
			LogLevel: p.opts.LogLevel,
			LogSpec:  p.cfg.Log.Raw,
			Environ:  p.opts.Environ,
			Logger:   log,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	adminDone := make(chan struct{})
	go func() {
		defer close(adminDone)
		if err := adminSrv.Serve(p.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server failed", "err", err)
			shutdown()
		}
	}()

	if p.policyClient != nil {
		policyDone := make(chan struct{})
		defer func() { <-policyDone; p.policyConn.Close() }()
		go func() {
			defer close(policyDone)
			_ = p.policyClient.Run(ctx) // returns when ctx is done
		}()
	}

	in := &transport.Server{Handler: p.inbound.Handle, Logger: log}
	out := &transport.Server{Handler: p.outbound.Handle, Logger: log}
	var wg sync.WaitGroup
	serve := func(s *transport.Server, ln net.Listener) {
		defer wg.Done()
		if err := s.Serve(ctx, ln); err != nil {
			log.Error("listener failed", "addr", ln.Addr(), "err", err)
			shutdown()
		}
	}
	wg.Add(1 + len(p.outLns))
	go serve(in, p.inLn)
	for _, ln := range p.outLns {
		go serve(out, ln)
	}
	if p.tapServer != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.tapServer.Serve(ctx, p.tapLn, p.tlsConfigs.Server()); err != nil {
				log.Error("tap server failed", "err", err)
			}
		}()
	}
	p.ready.Store(true)
	// Once started, the pages of the executable only start-up used go back
	// to the kernel (package memtrim).
	trimDone := make(chan struct{})
	go func() {
		defer close(trimDone)
		t := time.NewTimer(startupTrimDelay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := memtrim.Release()
		log.Debug("released start-up pages", "mapped_bytes", n, "err", err)
	}()
	defer func() { <-trimDone }()
	log.Info("proxy ready", "inbound", p.inLn.Addr(), "outbound", p.outLns[0].Addr(), "admin", p.adminLn.Addr())

	<-ctx.Done()
	p.ready.Store(false)
	wg.Wait() // listeners closed
	log.Info("draining connections", "grace_period", p.cfg.ShutdownGracePeriod)
	drainCtx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownGracePeriod)
	defer cancel()
	var dwg sync.WaitGroup
	for _, f := range []func(context.Context) error{p.inbound.Shutdown, p.outbound.Shutdown, in.Drain, out.Drain} {
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			if err := f(drainCtx); err != nil {
				log.Warn("drain cut short", "err", err)
			}
		}()
	}
	dwg.Wait()
	if p.discovery != nil {
		p.discovery.Close()
		p.profiles.Close()
		p.dstConn.Close()
	}
	_ = adminSrv.Close()
	<-adminDone
	log.Info("proxy stopped")
	return nil
}

// dialControlPlane connects to a control-plane service: plaintext on
// loopback, otherwise mTLS proving our identity and checking the service's.
func dialControlPlane(addr, name string, tlsConfigs *meshtls.Configs) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if !config.IsLoopbackAddr(addr) {
		if tlsConfigs == nil {
			return nil, errors.New("a non-loopback control plane needs identity (mTLS)")
		}
		creds = credentials.NewTLS(tlsConfigs.Client(name, ""))
	}
	return grpc.NewClient(config.DialTarget(addr), grpc.WithTransportCredentials(creds))
}
