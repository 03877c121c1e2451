// Package metrics keeps the proxy's Prometheus metrics in Linkerd's families
// (request_total, response_total, response_latency_ms, tcp_*, *_errors_total).
//
// The hot path is plain atomics on objects that callers look up once per
// connection or target; label sets vary per target (an outbound endpoint may
// carry dst_deployment, another dst_statefulset), so families are exposed by
// an unchecked prometheus.Collector that builds constant metrics at scrape time.
package metrics

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sys/unix"

	"github.com/linkerd-go/linkerd/pkg/version"
)

// Label is one metric label.
type Label struct{ Name, Value string }

// Labels is an ordered label set.
type Labels []Label

// With returns a copy of l with more labels appended.
func (l Labels) With(more ...Label) Labels {
	out := make(Labels, 0, len(l)+len(more))
	out = append(out, l...)
	return append(out, more...)
}

// Get returns the value of the named label, or "".
func (l Labels) Get(name string) string {
	for _, x := range l {
		if x.Name == name {
			return x.Value
		}
	}
	return ""
}

func (l Labels) key() string {
	var b strings.Builder
	for _, x := range l {
		b.WriteString(x.Name)
		b.WriteByte(0)
		b.WriteString(x.Value)
		b.WriteByte(0)
	}
	return b.String()
}

func (l Labels) split() (names, values []string) {
	names = make([]string, len(l))
	values = make([]string, len(l))
	for i, x := range l {
		names[i], values[i] = x.Name, x.Value
	}
	return names, values
}

// LatencyBucketsMs are the upper bounds of response_latency_ms, as Linkerd's proxy.
var LatencyBucketsMs = []float64{
	1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
	1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
}

// Registry holds every metric the proxy exports.
type Registry struct {
	mu     sync.RWMutex
	http   map[string]*HTTP
	tcp    map[string]*TCP
	errs   map[string]*Counter // key: family + labels
	gauges map[string]*Gauge

	descMu sync.Mutex
	descs  map[string]*prometheus.Desc
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		http:   map[string]*HTTP{},
		tcp:    map[string]*TCP{},
		errs:   map[string]*Counter{},
		gauges: map[string]*Gauge{},
		descs:  map[string]*prometheus.Desc{},
	}
}

// HTTP returns the request/response metrics for one label set, creating them on first use.
func (r *Registry) HTTP(labels Labels) *HTTP {
	return r.HTTPFamily("", labels)
}

// HTTPFamily returns request/response metrics whose family names start
// with prefix ("route_": route_request_total, route_response_total,
// route_response_latency_ms), creating them on first use.
func (r *Registry) HTTPFamily(prefix string, labels Labels) *HTTP {
	k := prefix + "\x00" + labels.key()
	r.mu.RLock()
	h := r.http[k]
	r.mu.RUnlock()
	if h != nil {
		return h
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if h = r.http[k]; h == nil {
		h = &HTTP{prefix: prefix, labels: labels}
		r.http[k] = h
	}
	return h
}

// TCP returns the transport metrics for one label set, creating them on first use.
func (r *Registry) TCP(labels Labels) *TCP {
	k := labels.key()
	r.mu.RLock()
	t := r.tcp[k]
	r.mu.RUnlock()
	if t != nil {
		return t
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t = r.tcp[k]; t == nil {
		t = &TCP{labels: labels}
		r.tcp[k] = t
	}
	return t
}

// Counter returns a plain counter of the given family (e.g. "inbound_http_errors_total").
func (r *Registry) Counter(family string, labels Labels) *Counter {
	k := family + "\x00" + labels.key()
	r.mu.RLock()
	c := r.errs[k]
	r.mu.RUnlock()
	if c != nil {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c = r.errs[k]; c == nil {
		c = &Counter{family: family, labels: labels}
		r.errs[k] = c
	}
	return c
}

// Gauge returns a gauge of the given family.
func (r *Registry) Gauge(family string, labels Labels) *Gauge {
	k := family + "\x00" + labels.key()
	r.mu.RLock()
	g := r.gauges[k]
	r.mu.RUnlock()
	if g != nil {
		return g
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if g = r.gauges[k]; g == nil {
		g = &Gauge{family: family, labels: labels}
		r.gauges[k] = g
	}
	return g
}

// Counter is a monotonically increasing count.
type Counter struct {
	family string
	labels Labels
	n      atomic.Uint64
}

// Inc adds one.
func (c *Counter) Inc() { c.n.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.n.Add(n) }

// Value returns the current count.
func (c *Counter) Value() uint64 { return c.n.Load() }

// Gauge is a value that can go up and down, stored as float64 bits.
type Gauge struct {
	family string
	labels Labels
	bits   atomic.Uint64
}

// Set stores v.
func (g *Gauge) Set(v float64) { g.bits.Store(floatBits(v)) }

// Value returns the current value.
func (g *Gauge) Value() float64 { return floatFrom(g.bits.Load()) }

// HTTP holds request_total, response_total and response_latency_ms for one label set.
type HTTP struct {
	prefix    string
	labels    Labels
	requests  atomic.Uint64
	responses sync.Map // ResponseKey -> *atomic.Uint64
	latency   sync.Map // uint16 status -> *Histogram
}

// ResponseKey is the label values response_total adds to the endpoint labels.
type ResponseKey struct {
	Status     uint16 // 0 when no response was received
	Failure    bool
	GRPCStatus int32 // -1 when not gRPC
	Error      string
}

// Request counts one request.
func (h *HTTP) Request() { h.requests.Add(1) }

// Requests returns request_total.
func (h *HTTP) Requests() uint64 { return h.requests.Load() }

// Response counts one finished response.
func (h *HTTP) Response(k ResponseKey) {
	v, ok := h.responses.Load(k)
	if !ok {
		v, _ = h.responses.LoadOrStore(k, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// ResponseCount returns response_total for one key.
func (h *HTTP) ResponseCount(k ResponseKey) uint64 {
	if v, ok := h.responses.Load(k); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

// Latency observes the time until response headers for a response with the given status.
func (h *HTTP) Latency(status int, d time.Duration) {
	k := uint16(status)
	v, ok := h.latency.Load(k)
	if !ok {
		v, _ = h.latency.LoadOrStore(k, NewHistogram(LatencyBucketsMs))
	}
	v.(*Histogram).Observe(float64(d.Microseconds()) / 1000)
}

// Histogram is a lock-free fixed-bucket histogram.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // one per bound, plus +Inf
	sum    atomic.Uint64   // float64 bits
}

// NewHistogram returns a histogram with the given upper bounds.
func NewHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, floatBits(floatFrom(old)+v)) {
			return
		}
	}
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

func (h *Histogram) snapshot() (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(h.bounds))
	for i, b := range h.bounds {
		count += h.counts[i].Load()
		buckets[b] = count
	}
	count += h.counts[len(h.bounds)].Load()
	return count, floatFrom(h.sum.Load()), buckets
}

// TCP holds the tcp_* families for one label set.
type TCP struct {
	labels Labels
	opened atomic.Uint64
	open   atomic.Int64
	read   atomic.Uint64
	write  atomic.Uint64
	closes sync.Map // errno string -> *atomic.Uint64
}

// Open counts an opened connection.
func (t *TCP) Open() {
	t.opened.Add(1)
	t.open.Add(1)
}

// Close counts a closed connection; err is the error that ended it, if any.
func (t *TCP) Close(err error) {
	t.open.Add(-1)
	k := Errno(err)
	v, ok := t.closes.Load(k)
	if !ok {
		v, _ = t.closes.LoadOrStore(k, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// AddRead counts bytes read from the peer.
func (t *TCP) AddRead(n int) { t.read.Add(uint64(n)) }

// AddWrite counts bytes written to the peer.
func (t *TCP) AddWrite(n int) { t.write.Add(uint64(n)) }

// Snapshot returns opened, currently open, read and written counts.
func (t *TCP) Snapshot() (opened uint64, open int64, read, written uint64) {
	return t.opened.Load(), t.open.Load(), t.read.Load(), t.write.Load()
}

// Errno names the system error in err ("ECONNRESET"), "" for nil or non-system errors.
func Errno(err error) string {
	var e syscall.Errno
	if err == nil || !errors.As(err, &e) {
		return ""
	}
	return unix.ErrnoName(e)
}

// Gatherer returns a prometheus.Gatherer with the proxy's families, process_* and proxy_build_info.
func (r *Registry) Gatherer() prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "proxy_build_info",
		Help: "Proxy build info.",
		ConstLabels: prometheus.Labels{
			"version": version.Version, "git_sha": version.GitSHA,
			"go_version": runtime.Version(), "profile": "release",
		},
	}, func() float64 { return 1 }))
	reg.MustRegister(r)
	return reg
}

// Describe implements prometheus.Collector; the registry is unchecked because label sets vary.
func (r *Registry) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (r *Registry) Collect(ch chan<- prometheus.Metric) {
	r.mu.RLock()
	https := make([]*HTTP, 0, len(r.http))
	for _, h := range r.http {
		https = append(https, h)
	}
	tcps := make([]*TCP, 0, len(r.tcp))
	for _, t := range r.tcp {
		tcps = append(tcps, t)
	}
	counters := make([]*Counter, 0, len(r.errs))
	for _, c := range r.errs {
		counters = append(counters, c)
	}
	gauges := make([]*Gauge, 0, len(r.gauges))
	for _, g := range r.gauges {
		gauges = append(gauges, g)
	}
	r.mu.RUnlock()

	for _, h := range https {
		names, values := h.labels.split()
		ch <- prometheus.MustNewConstMetric(r.desc(h.prefix+"request_total", "Total count of HTTP requests.", names),
			prometheus.CounterValue, float64(h.requests.Load()), values...)
		h.responses.Range(func(k, v any) bool {
			rk := k.(ResponseKey)
			n := append(names[:len(names):len(names)], "status_code", "classification", "grpc_status", "error")
			status, grpc := "", ""
			if rk.Status != 0 {
				status = itoa(int(rk.Status))
			}
			if rk.GRPCStatus >= 0 {
				grpc = itoa(int(rk.GRPCStatus))
			}
			class := "success"
			if rk.Failure {
				class = "failure"
			}
			vals := append(values[:len(values):len(values)], status, class, grpc, rk.Error)
			ch <- prometheus.MustNewConstMetric(r.desc(h.prefix+"response_total", "Total count of HTTP responses.", n),
				prometheus.CounterValue, float64(v.(*atomic.Uint64).Load()), vals...)
			return true
		})
		h.latency.Range(func(k, v any) bool {
			n := append(names[:len(names):len(names)], "status_code")
			vals := append(values[:len(values):len(values)], itoa(int(k.(uint16))))
			count, sum, buckets := v.(*Histogram).snapshot()
			ch <- prometheus.MustNewConstHistogram(r.desc(h.prefix+"response_latency_ms",
				"Time from a request's headers to its response's headers, in milliseconds.", n),
				count, sum, buckets, vals...)
			return true
		})
	}
	for _, t := range tcps {
		names, values := t.labels.split()
		ch <- prometheus.MustNewConstMetric(r.desc("tcp_open_total", "Total count of opened connections.", names),
			prometheus.CounterValue, float64(t.opened.Load()), values...)
		ch <- prometheus.MustNewConstMetric(r.desc("tcp_open_connections", "Number of currently-open connections.", names),
			prometheus.GaugeValue, float64(t.open.Load()), values...)
		ch <- prometheus.MustNewConstMetric(r.desc("tcp_read_bytes_total", "Total count of bytes read from peers.", names),
			prometheus.CounterValue, float64(t.read.Load()), values...)
		ch <- prometheus.MustNewConstMetric(r.desc("tcp_write_bytes_total", "Total count of bytes written to peers.", names),
			prometheus.CounterValue, float64(t.write.Load()), values...)
		t.closes.Range(func(k, v any) bool {
			n := append(names[:len(names):len(names)], "errno")
			vals := append(values[:len(values):len(values)], k.(string))
			ch <- prometheus.MustNewConstMetric(r.desc("tcp_close_total", "Total count of closed connections.", n),
				prometheus.CounterValue, float64(v.(*atomic.Uint64).Load()), vals...)
			return true
		})
	}
	for _, c := range counters {
		names, values := c.labels.split()
		ch <- prometheus.MustNewConstMetric(r.desc(c.family, helpFor(c.family), names),
			prometheus.CounterValue, float64(c.n.Load()), values...)
	}
	for _, g := range gauges {
		names, values := g.labels.split()
		ch <- prometheus.MustNewConstMetric(r.desc(g.family, helpFor(g.family), names),
			prometheus.GaugeValue, g.Value(), values...)
	}
}

func helpFor(family string) string {
	switch {
	case strings.HasSuffix(family, "_errors_total"):
		return "The total number of connections or requests that failed with a proxy error."
	default:
		return family
	}
}

func (r *Registry) desc(name, help string, labels []string) *prometheus.Desc {
	k := name + "\x00" + strings.Join(labels, "\x00")
	r.descMu.Lock()
	defer r.descMu.Unlock()
	d := r.descs[k]
	if d == nil {
		d = prometheus.NewDesc(name, help, labels, nil)
		r.descs[k] = d
	}
	return d
}
