// Package destination is the control plane's service discovery: it serves
// the Destination API (proto/destination/v1) to proxies from a store of
// Services, EndpointSlices and Pods (controller/store).
//
// The flow follows the informer → queue → worker pattern:
//
//	store events ──► handler (enqueue keys only) ──► work queue
//	work queue ──► workers: recompute the watchers depending on the key
//	watcher ──► per-subscriber bounded queues ──► one goroutine per Get stream
//
// There is one watcher per target (Service and port, or IP and port), shared
// by all its subscribers, created by the first subscription and dropped with
// the last. A watcher publishes the difference between its previous and
// current endpoint sets; a subscriber whose queue is full is not waited for:
// it later receives the difference between what it last sent and the
// current state, so one slow stream never delays the others.
package destination

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
)

// Defaults for Config.
const (
	DefaultControllerNamespace = "linkerd"
	DefaultTrustDomain         = "cluster.local"
	DefaultClusterDomain       = "cluster.local"
	DefaultSubscriberQueue     = 100
	DefaultWorkers             = 2
)

// Config configures a Server. Zero fields take the defaults.
type Config struct {
	// ControllerNamespace is the control plane's namespace: pods labelled
	// linkerd.io/control-plane-ns with it are meshed, and it is part of
	// their identities.
	ControllerNamespace string
	// TrustDomain is the identity trust domain.
	TrustDomain string
	// ClusterDomain is the Kubernetes DNS domain of Service names.
	ClusterDomain string
	// DefaultOpaquePorts apply to pods and Services without the
	// opaque-ports annotation; nil means k8s.DefaultOpaquePorts (use an
	// empty non-nil set for none).
	DefaultOpaquePorts k8s.PortSet
	// DisableH2Upgrade leaves out the h2 protocol hint of meshed endpoints:
	// proxies then keep HTTP/1.1 between them (Linkerd's
	// -enable-h2-upgrade=false).
	DisableH2Upgrade bool
	// SubscriberQueue is how many state changes may wait for a slow stream
	// before they are coalesced.
	SubscriberQueue int
	// Workers is the number of goroutines processing store changes.
	Workers int
	// Log receives the server's logs; nil discards them.
	Log *slog.Logger
	// Registerer receives the server's metrics; nil does not register them.
	Registerer prometheus.Registerer
}

// Server implements destinationv1.DestinationServer.
type Server struct {
	destinationv1.UnimplementedDestinationServer

	store   store.Store
	cfg     Config
	log     *slog.Logger
	reg     *registry
	queue   *workqueue.Typed[store.Key]
	metrics *metrics
	// profiles are the GetProfile streams.
	profiles profileSubs
}

var _ destinationv1.DestinationServer = (*Server)(nil)

// NewServer returns a server reading st and registers its event handler on
// st, so it must be called before st.Run.
func NewServer(st store.Store, cfg Config) (*Server, error) {
	if cfg.ControllerNamespace == "" {
		cfg.ControllerNamespace = DefaultControllerNamespace
	}
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = DefaultTrustDomain
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = DefaultClusterDomain
	}
	if cfg.DefaultOpaquePorts == nil {
		cfg.DefaultOpaquePorts = k8s.MustParsePortSet(k8s.DefaultOpaquePorts)
	}
	if cfg.SubscriberQueue <= 0 {
		cfg.SubscriberQueue = DefaultSubscriberQueue
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	res := &resolver{
		store:         st,
		controllerNS:  cfg.ControllerNamespace,
		trustDomain:   cfg.TrustDomain,
		defaultOpaque: cfg.DefaultOpaquePorts,
		h2Upgrade:     !cfg.DisableH2Upgrade,
		log:           log,
	}
	s := &Server{
		store:   st,
		cfg:     cfg,
		log:     log,
		reg:     newRegistry(res, cfg.SubscriberQueue, m),
		metrics: m,
		// Recomputing from the in-memory store cannot fail, so there are no
		// retries and no rate limiting; the queue deduplicates keys and never
		// hands one key to two workers at once.
		queue: workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[store.Key]{Name: "destination"}),
	}
	st.AddHandler(s.onEvent)
	return s, nil
}

// onEvent is the store handler: it only enqueues the keys whose watchers
// may need recomputing (an EndpointSlice maps to its Service).
func (s *Server) onEvent(ev store.Event) {
	s.metrics.events.WithLabelValues(string(ev.Kind), ev.Type.String()).Inc()
	switch ev.Kind {
	case store.KindServiceProfile, store.KindTrafficSplit, store.KindHTTPRoute, store.KindGatewayHTTPRoute:
		s.profiles.wake()
		return
	case store.KindService:
		s.profiles.wake()
		s.queue.Add(ev.Key())
	case store.KindPod:
		s.queue.Add(ev.Key())
	case store.KindEndpointSlice:
		for _, obj := range []metav1.Object{ev.Object, ev.Old} {
			if obj == nil {
				continue
			}
			if svc := obj.GetLabels()[k8s.ServiceNameLabel]; svc != "" {
				s.queue.Add(store.Key{Kind: store.KindService, Namespace: obj.GetNamespace(), Name: svc})
			}
		}
	}
}

// Run processes store changes until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	done := make(chan struct{})
	for range s.cfg.Workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for s.processNext() {
			}
		}()
	}
	<-ctx.Done()
	s.queue.ShutDown()
	for range s.cfg.Workers {
		<-done
	}
	return nil
}

// Ready reports whether the store has loaded its initial state.
func (s *Server) Ready() bool { return s.store.HasSynced() }

// processNext handles one key; false when the queue is shut down.
func (s *Server) processNext() bool {
	key, shutdown := s.queue.Get()
	if shutdown {
		return false
	}
	defer s.queue.Done(key)
	s.sync(key)
	return true
}

// sync recomputes every watcher that depends on key, or on an IP the
// resource now holds (a watcher on that IP may not have known it).
func (s *Server) sync(key store.Key) {
	keys := []store.Key{key}
	switch key.Kind {
	case store.KindService:
		if svc, ok := s.store.Service(key.Namespace, key.Name); ok {
			ips := svc.Spec.ClusterIPs
			if len(ips) == 0 {
				ips = []string{svc.Spec.ClusterIP}
			}
			keys = appendIPKeys(keys, ips)
		}
	case store.KindPod:
		if pod, ok := s.store.Pod(key.Namespace, key.Name); ok && !pod.Spec.HostNetwork {
			ips := []string{pod.Status.PodIP}
			for _, ip := range pod.Status.PodIPs {
				ips = append(ips, ip.IP)
			}
			keys = appendIPKeys(keys, ips)
		}
	}
	s.reg.refresh(keys...)
}

func appendIPKeys(keys []store.Key, ips []string) []store.Key {
	for _, s := range ips {
		if ip, err := parseIP(s); err == nil {
			keys = append(keys, ipKey(ip))
		}
	}
	return keys
}

// syncPoll is how often Get checks whether the store has synced.
const syncPoll = 20 * time.Millisecond

// Get implements destinationv1.DestinationServer: it streams the endpoints
// of the requested authority until the client goes away.
func (s *Server) Get(req *destinationv1.GetRequest, stream grpc.ServerStreamingServer[destinationv1.Update]) error {
	ctx := stream.Context()
	t, err := parseAuthority(req.GetAuthority(), s.cfg.ClusterDomain)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	log := s.log.With("authority", req.GetAuthority())
	log.Debug("get", "target", t.String(), "context", req.GetContextToken())

	if t.external {
		if err := stream.Send(noEndpoints(false)); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}
	if err := s.waitForSync(ctx); err != nil {
		return status.FromContextError(err).Err()
	}
	sub := s.reg.subscribe(t)
	defer s.reg.unsubscribe(sub)
	err = sub.run(ctx, stream.Send)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		log.Debug("get: stream ended", "err", err)
		return nil
	}
	if err != nil {
		log.Debug("get: send failed", "err", err)
	}
	return err
}

func (s *Server) waitForSync(ctx context.Context) error {
	if s.store.HasSynced() {
		return nil
	}
	t := time.NewTicker(syncPoll)
	defer t.Stop()
	for !s.store.HasSynced() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
