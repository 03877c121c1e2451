package destination

import (
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the destination service's Prometheus metrics.
type metrics struct {
	watchers    prometheus.Gauge
	subscribers prometheus.Gauge
	overflows   prometheus.Counter
	updates     *prometheus.CounterVec
	events      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "destination_watchers",
			Help: "Destinations (authority and port) with at least one subscriber.",
		}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "destination_subscribers",
			Help: "Open Get streams.",
		}),
		overflows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "destination_subscriber_overflows_total",
			Help: "Times a slow subscriber's queue was full and its updates were coalesced.",
		}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "destination_updates_total",
			Help: "Updates sent to subscribers, by type (add, remove, no_endpoints).",
		}, []string{"type"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "destination_store_events_total",
			Help: "Resource events received from the store, by kind and type.",
		}, []string{"kind", "type"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.watchers, m.subscribers, m.overflows, m.updates, m.events} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) countUpdate(u *destinationv1.Update) {
	switch u.Kind.(type) {
	case *destinationv1.Update_Add:
		m.updates.WithLabelValues("add").Inc()
	case *destinationv1.Update_Remove:
		m.updates.WithLabelValues("remove").Inc()
	case *destinationv1.Update_NoEndpoints:
		m.updates.WithLabelValues("no_endpoints").Inc()
	}
}
