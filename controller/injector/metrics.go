package injector

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are Linkerd's proxy injector metric families.
type metrics struct {
	requests  *prometheus.CounterVec
	responses *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_inject_admission_requests_total",
			Help: "Pod admission requests the proxy injector received.",
		}, []string{"namespace", "owner_kind"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxy_inject_admission_responses_total",
			Help: "Pod admission responses of the proxy injector, by outcome (injected, skipped with a reason, error).",
		}, []string{"namespace", "owner_kind", "skip", "reason", "outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.responses} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) request(ns, kind string) {
	m.requests.WithLabelValues(ns, kind).Inc()
}

// response counts an outcome: "injected", "skipped" (with reason) or "error".
func (m *metrics) response(ns, kind, reason, outcome string) {
	skip := "false"
	if outcome != "injected" {
		skip = "true"
	}
	m.responses.WithLabelValues(ns, kind, skip, reason, outcome).Inc()
}
