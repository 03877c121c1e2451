package route

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/discovery"
)

// Profiles finds the profile of a destination; nil when it has none.
type Profiles interface {
	Profile(ctx context.Context, dst discovery.Destination) *Profile
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// Context identifies the asking workload to the destination service.
	Context string
	// Key names what to ask for a destination (discovery.Client.LookupKey);
	// false: no profile.
	Key func(discovery.Destination) (string, bool)
	// IdleTimeout drops a lookup nobody used for this long (default 5s).
	IdleTimeout time.Duration
	// InitialTimeout bounds the wait for a lookup's first answer (default
	// 1s); past it requests go without a profile until one arrives.
	InitialTimeout time.Duration
	Logger         *slog.Logger
}

// Client looks profiles up with destination's GetProfile: one stream per
// destination, shared by its requests, evicted when idle. A profile that
// does not compile is ignored with a warning: the last good one stays.
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
		opts.InitialTimeout = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
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

type subscription struct {
	key      string
	cancel   context.CancelFunc
	lastUsed atomic.Int64
	profile  atomic.Pointer[Profile]
	initial  chan struct{}
	once     sync.Once
}

func (s *subscription) ready() { s.once.Do(func() { close(s.initial) }) }

// Profile implements Profiles: the first request of a destination waits
// for its profile up to InitialTimeout.
func (c *Client) Profile(ctx context.Context, dst discovery.Destination) *Profile {
	key, ok := c.opts.Key(dst)
	if !ok {
		return nil
	}
	sub := c.subscribe(key)
	select {
	case <-sub.initial:
	case <-ctx.Done():
	}
	return sub.profile.Load()
}

func (c *Client) subscribe(key string) *subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	sub := c.subs[key]
	if sub == nil {
		ctx, cancel := context.WithCancel(c.ctx)
		sub = &subscription{key: key, cancel: cancel, initial: make(chan struct{})}
		c.subs[key] = sub
		c.wg.Add(2)
		go func() { defer c.wg.Done(); c.run(ctx, sub) }()
		go func() {
			defer c.wg.Done()
			t := time.NewTimer(c.opts.InitialTimeout)
			defer t.Stop()
			select {
			case <-t.C:
				sub.ready()
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

// run keeps the lookup's stream open, reconnecting with backoff; the last
// profile stays while the control plane is away.
func (c *Client) run(ctx context.Context, sub *subscription) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.stream(ctx, sub)
		if ctx.Err() != nil {
			return
		}
		switch status.Code(err) {
		case codes.Unimplemented:
			sub.ready() // a destination service without profiles: no retry
			return
		case codes.InvalidArgument:
			sub.ready() // no profile for this destination
		}
		c.log.Debug("profile lookup failed; retrying", "authority", sub.key, "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (c *Client) stream(ctx context.Context, sub *subscription) error {
	stream, err := c.api.GetProfile(ctx, &destinationv1.GetRequest{Authority: sub.key, ContextToken: c.opts.Context})
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		c.apply(sub, msg)
	}
}

// apply compiles and installs a profile; one that does not compile is
// ignored and the last good one kept.
func (c *Client) apply(sub *subscription, msg *destinationv1.Profile) {
	defer sub.ready()
	if msg.GetFullyQualifiedName() == "" && len(msg.GetRoutes()) == 0 &&
		len(msg.GetDstOverrides()) == 0 && len(msg.GetBackendRoutes()) == 0 {
		sub.profile.Store(nil)
		return
	}
	p, err := Compile(msg, dstLabel(msg.GetFullyQualifiedName(), sub.key))
	if err != nil {
		c.log.Warn("ignoring a profile that does not compile; keeping the last good one", "authority", sub.key, "err", err)
		return
	}
	sub.profile.Store(p)
}

// dstLabel is the dst label of a profile's metrics: its name with the
// lookup's port.
func dstLabel(name, key string) string {
	if name == "" {
		return key
	}
	if _, port, err := net.SplitHostPort(key); err == nil {
		return net.JoinHostPort(name, port)
	}
	return name
}

// ProfilesFunc adapts a function to Profiles (a fixed profile in tests).
type ProfilesFunc func(ctx context.Context, dst discovery.Destination) *Profile

// Profile implements Profiles.
func (f ProfilesFunc) Profile(ctx context.Context, dst discovery.Destination) *Profile {
	return f(ctx, dst)
}
