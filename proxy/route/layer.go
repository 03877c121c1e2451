package route

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

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
	cancel   context.CancelCauseFunc
	timedOut atomic.Bool
}

// RouteFamily is the prefix of the route metrics' family names.
const RouteFamily = "route_"

// Serve implements pipeline.Layer.
func (l *Layer) Serve(ctx context.Context, x *pipeline.Exchange) error {
	r := l.Profiles.Profile(ctx, x.Dst).Match(x.Method, x.Path)
	if r == nil {
		return x.Next(ctx)
	}
	st := &state{route: r, m: l.Registry.HTTPFamily(RouteFamily, r.labels)}
	x.Route = st
	if r.Timeout <= 0 {
		return x.Next(ctx)
	}
	// A timer rather than a deadline: the timeout bounds the wait for the
	// response head, not the body that follows (the context ends in End).
	ctx, st.cancel = context.WithCancelCause(ctx)
	t := time.AfterFunc(r.Timeout, func() {
		st.timedOut.Store(true)
		st.cancel(pipeline.ErrRequestTimeout)
	})
	err := x.Next(ctx)
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
	st.m.Request()
	if x.Status > 0 && !x.HeadAt.IsZero() {
		st.m.Latency(x.Status, x.HeadAt.Sub(x.Start))
	}
	st.m.Response(st.route.Classify(x.Status, x.GRPCStatus, x.Err))
}

var (
	_ pipeline.Layer = (*Layer)(nil)
	_ pipeline.Ender = (*Layer)(nil)
)
