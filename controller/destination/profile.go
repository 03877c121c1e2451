package destination

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/linkerd-go/linkerd/controller/store"
	spv1alpha2 "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// profileKey names the ServiceProfile of a target: the service's
// fully-qualified name in its namespace; service is the Service's name.
type profileKey struct{ namespace, name, service string }

// profileKeyOf returns the profile key of t; an IP target takes the
// profile of the Service with that cluster IP. ok is false when no
// profile can apply.
func (s *Server) profileKeyOf(t target) (profileKey, bool) {
	switch {
	case t.external:
		return profileKey{}, false
	case t.ip.IsValid():
		svcs := s.store.ServicesByIP(t.ip)
		if len(svcs) == 0 {
			return profileKey{}, false
		}
		return profileKey{svcs[0].Namespace, svcs[0].Name + "." + svcs[0].Namespace + ".svc." + s.cfg.ClusterDomain, svcs[0].Name}, true
	}
	return profileKey{t.namespace, t.service + "." + t.namespace + ".svc." + s.cfg.ClusterDomain, t.service}, true
}

// profileSubs are the open GetProfile streams, woken at every change of a
// ServiceProfile, TrafficSplit, HTTPRoute or Service (a cluster IP may move).
type profileSubs struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func (p *profileSubs) add() chan struct{} {
	ch := make(chan struct{}, 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.subs == nil {
		p.subs = map[chan struct{}]struct{}{}
	}
	p.subs[ch] = struct{}{}
	return ch
}

func (p *profileSubs) remove(ch chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.subs, ch)
}

// wake tells every stream to recompute; a stream already woken is not
// waited for.
func (p *profileSubs) wake() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ch := range p.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// GetProfile implements destinationv1.DestinationServer: it streams the
// profile of the requested authority, the whole profile at every change.
// A ServiceProfile that is not valid is ignored with a warning: the last
// valid one stays in force.
func (s *Server) GetProfile(req *destinationv1.GetRequest, stream grpc.ServerStreamingServer[destinationv1.Profile]) error {
	ctx := stream.Context()
	t, err := parseAuthority(req.GetAuthority(), s.cfg.ClusterDomain)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.waitForSync(ctx); err != nil {
		return status.FromContextError(err).Err()
	}
	wake := s.profiles.add()
	defer s.profiles.remove(wake)
	log := s.log.With("authority", req.GetAuthority())
	var last *destinationv1.Profile
	for {
		cur, err := s.currentProfile(t)
		switch {
		case err != nil && last != nil:
			log.Warn("ignoring an invalid ServiceProfile; keeping the last valid one", "err", err)
		case err != nil:
			log.Warn("ignoring an invalid ServiceProfile", "err", err)
			cur = &destinationv1.Profile{}
			fallthrough
		default:
			if last == nil || !proto.Equal(last, cur) {
				if err := stream.Send(cur); err != nil {
					return err
				}
				last = cur
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}

// currentProfile returns t's profile from the store: its ServiceProfile
// merged with the TrafficSplit and HTTPRoutes of its Service; empty when
// there are none, an error when a stored one is not valid.
func (s *Server) currentProfile(t target) (*destinationv1.Profile, error) {
	k, ok := s.profileKeyOf(t)
	if !ok {
		return &destinationv1.Profile{}, nil
	}
	p := &destinationv1.Profile{}
	if sp, ok := s.store.ServiceProfile(k.namespace, k.name); ok {
		var err error
		if p, err = ProfileFrom(sp); err != nil {
			return nil, err
		}
	}
	if err := s.applySplits(p, k.namespace, k.service, t.port); err != nil {
		return nil, err
	}
	return p, nil
}

// ProfileFrom validates a ServiceProfile and returns its API form.
func ProfileFrom(sp *spv1alpha2.ServiceProfile) (*destinationv1.Profile, error) {
	if why := sp.Annotations[store.InvalidAnnotation]; why != "" {
		return nil, fmt.Errorf("ServiceProfile %s/%s: %s", sp.Namespace, sp.Name, why)
	}
	if err := spv1alpha2.Validate(sp); err != nil {
		return nil, fmt.Errorf("ServiceProfile %s/%s: %w", sp.Namespace, sp.Name, err)
	}
	faults, err := spv1alpha2.Faults(sp)
	if err != nil {
		return nil, fmt.Errorf("ServiceProfile %s/%s: %w", sp.Namespace, sp.Name, err)
	}
	p := &destinationv1.Profile{FullyQualifiedName: sp.Name}
	for _, r := range sp.Spec.Routes {
		route := &destinationv1.Route{Name: r.Name, Condition: requestMatch(r.Condition), IsRetryable: r.IsRetryable}
		if r.Timeout != "" {
			d, err := time.ParseDuration(r.Timeout)
			if err != nil {
				return nil, fmt.Errorf("route %q: timeout: %w", r.Name, err)
			}
			route.TimeoutMs = d.Milliseconds()
		}
		if f, ok := faults[r.Name]; ok {
			route.Fault = &destinationv1.Fault{}
			if a := f.Abort; a != nil {
				route.Fault.AbortPercent, route.Fault.AbortHttpStatus = a.Percent, uint32(a.HTTPStatus)
			}
			if d := f.Delay; d != nil {
				dur, _ := time.ParseDuration(d.Duration) // validated
				route.Fault.DelayPercent, route.Fault.DelayMs = d.Percent, dur.Milliseconds()
			}
		}
		for _, rc := range r.ResponseClasses {
			route.ResponseClasses = append(route.ResponseClasses, &destinationv1.ResponseClass{
				Condition: responseMatch(rc.Condition), IsFailure: rc.IsFailure})
		}
		p.Routes = append(p.Routes, route)
	}
	if rb := sp.Spec.RetryBudget; rb != nil {
		ttl, err := time.ParseDuration(rb.TTL)
		if err != nil {
			return nil, fmt.Errorf("retryBudget.ttl: %w", err)
		}
		p.RetryBudget = &destinationv1.RetryBudget{RetryRatio: rb.RetryRatio,
			MinRetriesPerSecond: uint32(rb.MinRetriesPerSecond), TtlMs: ttl.Milliseconds()}
	}
	var total int64
	for _, d := range sp.Spec.DstOverrides {
		w := d.Weight.MilliValue()
		if w > math.MaxUint32 {
			w = math.MaxUint32
		}
		total += w
		p.DstOverrides = append(p.DstOverrides, &destinationv1.WeightedDst{Authority: d.Authority, WeightMilli: uint32(w)})
	}
	if len(p.DstOverrides) > 0 && total == 0 {
		return nil, errors.New("dstOverrides: the weights sum to 0")
	}
	return p, nil
}

func requestMatch(m *spv1alpha2.RequestMatch) *destinationv1.RequestMatch {
	if m == nil {
		return nil
	}
	out := &destinationv1.RequestMatch{PathRegex: m.PathRegex, Method: m.Method, Not: requestMatch(m.Not)}
	for _, c := range m.All {
		out.All = append(out.All, requestMatch(c))
	}
	for _, c := range m.Any {
		out.Any = append(out.Any, requestMatch(c))
	}
	return out
}

func responseMatch(m *spv1alpha2.ResponseMatch) *destinationv1.ResponseMatch {
	if m == nil {
		return nil
	}
	out := &destinationv1.ResponseMatch{Not: responseMatch(m.Not)}
	if m.Status != nil {
		lo, hi := m.Status.Bounds()
		out.Status = &destinationv1.StatusRange{Min: uint32(lo), Max: uint32(hi)}
	}
	for _, c := range m.All {
		out.All = append(out.All, responseMatch(c))
	}
	for _, c := range m.Any {
		out.Any = append(out.Any, responseMatch(c))
	}
	return out
}
