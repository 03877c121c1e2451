package pipeline

import (
	"context"
	"net/netip"

	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// Metrics counts requests and responses as Linkerd does: request_total when
// the response head arrives (or the proxy answers), response_latency_ms
// from the request's start to its response head, and response_total,
// classified, when the exchange ends. Answers the proxy made itself count
// as failures with their error label. Labels come from the connection and,
// outbound, the endpoint; they are cached on the connection.
type Metrics struct {
	Registry  *metrics.Registry
	Direction string
}

// Serve implements Layer.
func (l *Metrics) Serve(ctx context.Context, x *Exchange) error {
	err := x.Next(ctx)
	if err == nil {
		l.count(x)
	}
	return err
}

func (l *Metrics) count(x *Exchange) {
	x.m = l.metricsFor(x)
	x.m.Request()
	if x.Status > 0 {
		x.m.Latency(x.Status, x.HeadAt.Sub(x.Start))
	}
}

// End implements Ender.
func (l *Metrics) End(x *Exchange) {
	if x.m == nil {
		l.count(x)
	}
	x.m.Response(x.Key())
	if x.Endpoint == nil && x.Err != nil {
		// Also counted as an error of the direction, with no endpoint to blame.
		l.Registry.Counter(l.Direction+"_http_errors_total",
			metrics.Labels{{Name: "error", Value: transport.ErrorReason(x.Err)}}).Inc()
	}
}

// PolicyLabels are the labels an inbound authorization decision adds to
// the request metrics (srv_*, route_*, authz_*). The authz layer gives the
// exchanges of one decision the same *PolicyLabels, so the metrics layer
// caches by pointer; their number is bounded by the policy's servers,
// routes and authorizations.
type PolicyLabels struct{ Labels metrics.Labels }

type metricsKey struct {
	authority string
	addr      netip.AddrPort
	identity  string
	policy    *PolicyLabels
}

// lastMetrics is the metrics a connection used last, checked before its
// cache without building a key.
type lastMetrics struct {
	metricsKey
	m *metrics.HTTP
}

// metricsFor returns the request metrics of x's authority and endpoint,
// cached on the connection so steady traffic does no label work.
func (l *Metrics) metricsFor(x *Exchange) *metrics.HTTP {
	k := metricsKey{authority: x.Authority, policy: x.Policy}
	if ep := x.Endpoint; ep != nil {
		k.addr, k.identity = ep.Addr, ep.Identity
	}
	c := x.Conn
	if last := c.lastMetrics.Load(); last != nil && last.metricsKey == k {
		return last.m
	}
	if m, ok := c.metricsCache.Load(k); ok {
		c.lastMetrics.Store(&lastMetrics{metricsKey: k, m: m.(*metrics.HTTP)})
		return m.(*metrics.HTTP)
	}
	m := l.Registry.HTTP(l.labels(x))
	c.metricsCache.Store(k, m)
	c.lastMetrics.Store(&lastMetrics{metricsKey: k, m: m})
	return m
}

func (l *Metrics) labels(x *Exchange) metrics.Labels {
	ep := x.Endpoint
	n := 12
	if ep != nil {
		n += len(ep.Labels)
	}
	if x.Policy != nil {
		n += len(x.Policy.Labels)
	}
	lb := make(metrics.Labels, 0, n)
	lb = append(lb, metrics.Label{Name: "direction", Value: l.Direction})
	if x.Authority != "" {
		lb = append(lb, metrics.Label{Name: "authority", Value: x.Authority})
	}
	switch {
	case l.Direction == transport.Inbound:
		lb = append(lb, transport.TargetLabels(x.Conn.OrigDst)...)
		lb = append(lb, x.Conn.TLS.AcceptLabels()...)
		if x.Policy != nil {
			lb = append(lb, x.Policy.Labels...)
		}
	case ep != nil:
		lb = append(lb, transport.TargetLabels(ep.Addr)...)
		tls := transport.NoIdentity(ep.NoTLSReason)
		if ep.Identity != "" {
			tls = transport.TLS{Mode: transport.TLSMeshed, ID: ep.Identity}
		}
		lb = append(lb, tls.ConnectLabels()...)
		lb = append(lb, ep.Labels...)
	case x.Conn.OrigDst.IsValid():
		lb = append(lb, transport.TargetLabels(x.Conn.OrigDst)...)
	}
	return lb
}

var (
	_ Layer = (*Metrics)(nil)
	_ Ender = (*Metrics)(nil)
)
