package discovery

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/metrics"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// Context identifies the asking workload to the destination service.
	Context string
	// Suffixes are the DNS suffixes whose names are looked up by name.
	Suffixes []string
	// Networks are the networks whose addresses are looked up by IP.
	Networks []netip.Prefix
	// IdleTimeout drops a lookup nobody used for this long (default 5s).
	IdleTimeout time.Duration
	// InitialTimeout bounds the wait for a lookup's first answer (default 3s);
	// past it the destination is treated as unknown and forwarded as is.
	InitialTimeout time.Duration
	// Fallback resolves what the destination service does not know.
	Fallback Resolver
	Logger   *slog.Logger
	// Balancer options for each destination's endpoints.
	Balancer balance.Options
}

// Client resolves destinations through the destination service: one
// streaming lookup per destination, shared by all requests, kept while in use
// and evicted when idle. When the control plane cannot be reached at first
// use the destination is forwarded to its original address; once known, the
// last endpoints are kept while the control plane is away.
type Client struct {
	api  destinationv1.DestinationClient
	opts ClientOptions
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	subs map[string]*subscription
}

// NewClient starts a client on conn; Close stops it.
func NewClient(conn grpc.ClientConnInterface, opts ClientOptions) *Client {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Second
	}
	if opts.InitialTimeout <= 0 {
		opts.InitialTimeout = 3 * time.Second
	}
	c := &Client{api: destinationv1.NewDestinationClient(conn), opts: opts, log: opts.Logger, subs: map[string]*subscription{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.evictIdle()
	return c
}

// Close stops every lookup.
func (c *Client) Close() {
	c.cancel()
	c.wg.Wait()
}

// Resolve implements Resolver.
func (c *Client) Resolve(ctx context.Context, dst Destination) (balance.Balancer, error) {
	key, ok := c.lookupKey(dst)
	if !ok {
		return c.opts.Fallback.Resolve(ctx, dst)
	}
	sub := c.subscribe(key)
	select {
	case <-sub.initial:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if !sub.known() {
		return c.opts.Fallback.Resolve(ctx, dst)
	}
	return sub.bal, nil
}

// LookupKey is what the client asks the destination service for dst
// ("name:port" or "ip:port"); false when dst is not looked up.
func (c *Client) LookupKey(dst Destination) (string, bool) { return c.lookupKey(dst) }

// lookupKey is what to ask the destination service: a service name under
// one of the suffixes (with its port), else an address in the cluster networks.
func (c *Client) lookupKey(dst Destination) (string, bool) {
	if host, port, ok := splitAuthority(dst.Authority); ok {
		if _, err := netip.ParseAddr(host); err != nil {
			name := strings.TrimSuffix(host, ".")
			for _, s := range c.opts.Suffixes {
				s = strings.TrimSuffix(s, ".")
				if name == s || strings.HasSuffix(name, "."+s) {
					return name + ":" + port, true
				}
			}
		}
	}
	if dst.Addr.IsValid() {
		ip := dst.Addr.Addr().Unmap()
		for _, n := range c.opts.Networks {
			if n.Contains(ip) {
				return netip.AddrPortFrom(ip, dst.Addr.Port()).String(), true
			}
		}
	}
	return "", false
}

func splitAuthority(a string) (host, port string, ok bool) {
	if a == "" {
		return "", "", false
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a, "80", true
	}
	return host, port, true
}

func (c *Client) subscribe(key string) *subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	sub := c.subs[key]
	if sub == nil {
		ctx, cancel := context.WithCancel(c.ctx)
		sub = &subscription{key: key, cancel: cancel, initial: make(chan struct{}),
			bal: balance.NewP2C(c.opts.Balancer), endpoints: map[netip.AddrPort]*balance.Endpoint{}}
		c.subs[key] = sub
		c.wg.Add(2)
		go func() { defer c.wg.Done(); c.run(ctx, sub) }()
		go func() {
			defer c.wg.Done()
			select {
			case <-time.After(c.opts.InitialTimeout):
				sub.markInitial()
			case <-ctx.Done():
			}
		}()
	}
	sub.lastUsed.Store(time.Now().UnixNano())
	return sub
}

func (c *Client) evictIdle() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.IdleTimeout / 2)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case now := <-t.C:
			c.mu.Lock()
			for key, sub := range c.subs {
				if now.Sub(time.Unix(0, sub.lastUsed.Load())) > c.opts.IdleTimeout {
					sub.cancel()
					delete(c.subs, key)
				}
			}
			c.mu.Unlock()
		}
	}
}

// run keeps the lookup's stream open, reconnecting with backoff.
func (c *Client) run(ctx context.Context, sub *subscription) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.stream(ctx, sub)
		if ctx.Err() != nil {
			return
		}
		switch status.Code(err) {
		case codes.InvalidArgument, codes.NotFound:
			// Not something the control plane resolves: forward as is.
			sub.setUnknown()
		default:
			c.log.Debug("destination lookup failed; retrying", "authority", sub.key, "err", err, "in", backoff)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (c *Client) stream(ctx context.Context, sub *subscription) error {
	stream, err := c.api.Get(ctx, &destinationv1.GetRequest{Authority: sub.key, ContextToken: c.opts.Context})
	if err != nil {
		return err
	}
	// The first update of a stream is the whole state (an Add of every
	// endpoint, or NoEndpoints): it replaces what an earlier stream said,
	// which may have missed removals while the control plane was away.
	for first := true; ; first = false {
		upd, err := stream.Recv()
		if err != nil {
			return err
		}
		sub.apply(upd, first)
	}
}

// subscription is one destination's lookup and its endpoints.
type subscription struct {
	key      string
	cancel   context.CancelFunc
	bal      *balance.P2C
	lastUsed atomic.Int64

	initial     chan struct{}
	initialOnce sync.Once

	mu        sync.Mutex
	endpoints map[netip.AddrPort]*balance.Endpoint
	answered  bool // the control plane answered for this destination
	exists    bool // ... and knows it
}

func (s *subscription) markInitial() { s.initialOnce.Do(func() { close(s.initial) }) }

func (s *subscription) known() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answered && s.exists
}

func (s *subscription) setUnknown() {
	s.mu.Lock()
	s.answered, s.exists = true, false
	s.mu.Unlock()
	s.markInitial()
}

// apply applies an update; a snapshot (the first update of a stream)
// replaces the endpoints.
func (s *subscription) apply(u *destinationv1.Update, snapshot bool) {
	s.mu.Lock()
	s.answered = true
	switch k := u.GetKind().(type) {
	case *destinationv1.Update_Add:
		s.exists = true
		if snapshot {
			clear(s.endpoints)
		}
		set := k.Add
		// An unknown name (from a newer control plane) gets the default.
		alg, _ := balance.ParseAlgorithm(set.GetBalancer())
		s.bal.SetAlgorithm(alg)
		for _, e := range set.GetEndpoints() {
			if ep, ok := endpointFrom(e, set.GetMetricLabels()); ok {
				s.endpoints[ep.Addr] = ep
			}
		}
	case *destinationv1.Update_Remove:
		for _, a := range k.Remove.GetAddrs() {
			if ap, ok := addrFrom(a); ok {
				delete(s.endpoints, ap)
			}
		}
	case *destinationv1.Update_NoEndpoints:
		s.exists = k.NoEndpoints.GetExists()
		clear(s.endpoints)
	}
	eps := make([]*balance.Endpoint, 0, len(s.endpoints))
	for _, ep := range s.endpoints {
		eps = append(eps, ep)
	}
	s.mu.Unlock()
	s.bal.Update(eps)
	s.markInitial()
}

func addrFrom(a *destinationv1.TcpAddress) (netip.AddrPort, bool) {
	ip, ok := netip.AddrFromSlice(a.GetIp())
	if !ok || a.GetPort() == 0 || a.GetPort() > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.GetPort())), true
}

// endpointFrom converts an endpoint; labels become dst_* in a stable order.
func endpointFrom(e *destinationv1.Endpoint, setLabels map[string]string) (*balance.Endpoint, bool) {
	addr, ok := addrFrom(e.GetAddr())
	if !ok {
		return nil, false
	}
	all := make(map[string]string, len(setLabels)+len(e.GetMetricLabels()))
	for k, v := range setLabels {
		all[k] = v
	}
	for k, v := range e.GetMetricLabels() {
		all[k] = v
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	labels := make(metrics.Labels, 0, len(keys))
	for _, k := range keys {
		labels = append(labels, metrics.Label{Name: "dst_" + k, Value: all[k]})
	}
	ep := &balance.Endpoint{Addr: addr, Labels: labels, Weight: e.GetWeight(), Identity: e.GetTlsIdentity()}
	if ep.Identity == "" {
		ep.NoTLSReason = "not_provided_by_service_discovery"
	}
	if p := e.GetHint().GetOpaqueTransportPort(); p > 0 && p <= 65535 && ep.Identity != "" {
		ep.OpaqueTransportPort = uint16(p)
	}
	ep.H2 = e.GetHint().GetH2() && ep.Identity != "" && ep.OpaqueTransportPort == 0
	return ep, true
}

// CanonicalName implements Namer: the service name a request's authority
// resolves by ("web.ns.svc.cluster.local:8080"), "" for address lookups.
func (c *Client) CanonicalName(dst Destination) string {
	key, ok := c.lookupKey(dst)
	if !ok {
		return ""
	}
	if _, err := netip.ParseAddrPort(key); err == nil {
		return ""
	}
	return key
}

var (
	_ Resolver = (*Client)(nil)
	_ Namer    = (*Client)(nil)
)
