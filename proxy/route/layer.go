package route

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// Layer (outbound, after dst) matches each request to a route of its
// destination's profile, counts it in the route's metrics and bounds the
// wait for its response head by the route's timeout. Requests without a
// route go on untouched.
type Layer struct {
	Profiles Profiles
	Registry *metrics.Registry
}

// state is the layer's per-exchange state (pipeline.Exchange.Route).
type state struct {
	route    *Route
	m        *metrics.HTTP
	actual   *metrics.HTTP // per attempt
	cancel   context.CancelCauseFunc
	timedOut atomic.Bool
}

// Prefixes of the route metrics' family names: per request, per attempt.
const (
	RouteFamily  = "route_"
	ActualFamily = "route_actual_"
)

// MaxAttempts bounds the attempts of one request, whatever the budget.
const MaxAttempts = 10

// forward runs the rest of the chain, and again while a retryable route's
// attempt failed (an error, or a response its classes call a failure), the
// engine can send the request again and the profile's budget allows.
func (l *Layer) forward(ctx context.Context, x *pipeline.Exchange, p *Profile, st *state) error {
	r := st.route
	if !r.Retryable {
		return x.Next(ctx)
	}
	p.budget.Deposit()
	pos, nfields := x.Pos(), len(x.Fields)
	for attempt := 1; ; attempt++ {
		err := x.Next(ctx)
		if err != nil && pipeline.IsClientError(err) {
			return err
		}
		if err == nil && !r.Classify(x.Status, x.GRPCStatus, nil).Failure {
			return nil
		}
		if ctx.Err() != nil || attempt >= MaxAttempts || !x.Replayable() {
			return err
		}
		if !p.budget.Withdraw() {
			l.Registry.Counter("route_retryable_total", r.labels.With(metrics.Label{Name: "skipped", Value: "no_budget"})).Inc()
			return err
		}
		l.countAttempt(st, x, err)
		x.ResetAttempt(err, nfields)
		x.Redo(pos)
	}
}

// countAttempt counts an attempt that is retried in route_actual_*.
func (l *Layer) countAttempt(st *state, x *pipeline.Exchange, err error) {
	_, actual := l.metricsFor(st, x.Endpoint)
	actual.Request()
	if x.Status > 0 && !x.HeadAt.IsZero() {
		actual.Latency(x.Status, x.HeadAt.Sub(x.Start))
	}
	actual.Response(st.route.Classify(x.Status, x.GRPCStatus, err))
}

// families returns the route's metrics without endpoint labels, cached on
// the route (looking them up builds their key).
func (l *Layer) families(r *Route) (m, actual *metrics.HTTP) {
	if f := r.fams.Load(); f != nil && f.reg == l.Registry {
		return f.m, f.actual
	}
	f := &routeFams{reg: l.Registry, m: l.Registry.HTTPFamily(RouteFamily, r.labels),
		actual: l.Registry.HTTPFamily(ActualFamily, r.labels)}
	r.fams.Store(f)
	return f.m, f.actual
}

// routeMetrics are a route's metrics for one endpoint's labels.
type routeMetrics struct{ m, actual *metrics.HTTP }

// metricsFor returns the route's metrics with the endpoint's workload
// labels (dst_namespace, dst_service, dst_deployment, ..., not the pod's),
// which `viz routes --to` selects on; cached per endpoint on the route.
func (l *Layer) metricsFor(st *state, ep *balance.Endpoint) (m, actual *metrics.HTTP) {
	if ep == nil || len(ep.Labels) == 0 {
		return st.m, st.actual
	}
	r := st.route
	if v, ok := r.eps.Load(ep); ok {
		rm := v.(*routeMetrics)
		return rm.m, rm.actual
	}
	labels := r.labels.With()
	for _, lb := range ep.Labels {
		if !strings.HasPrefix(lb.Name, "dst_pod") && lb.Name != "dst_zone" {
			labels = append(labels, lb)
		}
	}
	rm := &routeMetrics{m: l.Registry.HTTPFamily(RouteFamily, labels), actual: l.Registry.HTTPFamily(ActualFamily, labels)}
	r.eps.Store(ep, rm)
	return rm.m, rm.actual
}

// Serve implements pipeline.Layer.
func (l *Layer) Serve(ctx context.Context, x *pipeline.Exchange) error {
	p := l.Profiles.Profile(ctx, x.Dst)
	req := &Request{Method: x.Method, Target: x.Path, Header: x.Header}
	var filters *Filters
	if p.Splits() {
		// Traffic split: the balance layer resolves the chosen authority.
		if br := p.matchBackend(req); br != nil {
			x.Dst.Authority = pick(br.backends, br.total, x.Dst.Authority, rand.Float64())
			filters = br.filters
		} else {
			x.Dst.Authority = p.Split(x.Dst.Authority, rand.Float64())
		}
	}
	r := p.MatchRequest(req)
	if r == nil {
		if err := filters.Apply(x); err != nil {
			return err
		}
		return x.Next(ctx)
	}
	st := &state{route: r}
	st.m, st.actual = l.families(r)
	x.Route = st
	// The rule's filters, once the route counts the exchange (a redirect
	// is its response).
	if err := filters.Apply(x); err != nil {
		return err
	}
	if f := r.fault; f != nil {
		if err := f.inject(ctx, rand.Float64(), rand.Float64()); err != nil {
			return err
		}
	}
	if r.Timeout <= 0 {
		return l.forward(ctx, x, p, st)
	}
	// A timer rather than a deadline: the timeout bounds the wait for the
	// response head, not the body that follows (the context ends in End).
	ctx, st.cancel = context.WithCancelCause(ctx)
	t := time.AfterFunc(r.Timeout, func() {
		st.timedOut.Store(true)
		st.cancel(pipeline.ErrRequestTimeout)
	})
	err := l.forward(ctx, x, p, st)
	if !t.Stop() && err != nil && st.timedOut.Load() {
		return &pipeline.StatusError{Status: http.StatusGatewayTimeout,
			Err: fmt.Errorf("route %q timed out after %s: %w", r.Name, r.Timeout, context.DeadlineExceeded)}
	}
	return err
}

// End implements pipeline.Ender: the route's request, latency and
// classified response are counted when the exchange ends.
func (l *Layer) End(x *pipeline.Exchange) {
	st, ok := x.Route.(*state)
	if !ok {
		return
	}
	if st.cancel != nil {
		st.cancel(nil)
	}
	k := st.route.Classify(x.Status, x.GRPCStatus, x.Err)
	m, actual := l.metricsFor(st, x.Endpoint)
	for _, m := range []*metrics.HTTP{m, actual} {
		m.Request()
		if x.Status > 0 && !x.HeadAt.IsZero() {
			m.Latency(x.Status, x.HeadAt.Sub(x.Start))
		}
		m.Response(k)
	}
}

// ErrFaultInjected is the error of the requests a fault aborts.
var ErrFaultInjected = errors.New("fault injected by the ServiceProfile")

// inject applies the fault given two uniform draws in [0, 1): the delay
// (ending early with ctx), then the abort, an error answered with its status.
func (f *fault) inject(ctx context.Context, delayDraw, abortDraw float64) error {
	if f.delayBy > 0 && delayDraw < f.delay {
		t := time.NewTimer(f.delayBy)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if abortDraw < f.abort {
		return &pipeline.StatusError{Status: f.abortStatus, Err: ErrFaultInjected}
	}
	return nil
}

var (
	_ pipeline.Layer = (*Layer)(nil)
	_ pipeline.Ender = (*Layer)(nil)
)
