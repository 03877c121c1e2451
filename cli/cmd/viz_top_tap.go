package cmd

import (
	"context"
	"math"
	"net/netip"
	"sync"
	"time"

	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	"github.com/linkerd-go/linkerd/viz/tap"
)

// tapTopSource aggregates tap events, as Linkerd's top does: per source,
// destination, method and path, the count of finished requests, their
// best, worst and last latency, and their success rate.
type tapTopSource struct {
	names map[string]string // pod IP -> pod name
	ready time.Time         // when the first rows are worth showing

	mu      sync.Mutex
	open    map[tapKey]*tapReq // requests started, by pod and id
	rows    map[topKey]*topRow
	success map[topKey]float64
	err     error
}

type tapKey struct {
	pod string
	id  uint64
}

type topKey struct{ src, dst, method, path string }

type tapReq struct {
	key    topKey
	failed bool // a 5xx response
}

// newTapTopSource taps targets until ctx ends and aggregates their events;
// names maps pod IPs to pod names for the Source and Destination columns.
func newTapTopSource(ctx context.Context, targets []tap.Target, names map[string]string) *tapTopSource {
	s := &tapTopSource{names: names, ready: time.Now().Add(tapSettle), open: map[tapKey]*tapReq{}, rows: map[topKey]*topRow{}, success: map[topKey]float64{}}
	events, errs := tap.Observe(ctx, targets, nil, 100)
	go func() {
		for ev := range events {
			s.add(ev)
		}
		for err := range errs {
			s.mu.Lock()
			if s.err == nil {
				s.err = err
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *tapTopSource) Describe() string {
	return "from tap: the requests seen since top started"
}

// tapSettle is how long top collects events before its first rows.
const tapSettle = 2 * time.Second

func (s *tapTopSource) Rows(ctx context.Context) ([]topRow, error) {
	if wait := time.Until(s.ready); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := make([]topRow, 0, len(s.rows))
	for k, r := range s.rows {
		row := *r
		row.Success = s.success[k] / r.Count
		rows = append(rows, row)
	}
	if len(rows) == 0 && s.err != nil {
		return nil, s.err
	}
	return rows, nil
}

// name is the pod at addr ("ip:port"), or the address when unknown.
func (s *tapTopSource) name(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		if n, ok := s.names[ap.Addr().String()]; ok {
			return n
		}
		return ap.Addr().String()
	}
	return addr
}

func (s *tapTopSource) add(ev tap.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e := ev.Event.(type) {
	case *tapv1.TapEvent_RequestInit:
		r := e.RequestInit
		k := topKey{method: r.Method, path: r.Path}
		if ev.Direction == "inbound" {
			k.src, k.dst = s.name(ev.Source), ev.Pod
		} else {
			k.src, k.dst = ev.Pod, s.name(ev.Destination)
			if d := ev.DestinationMeta["pod"]; d != "" {
				k.dst = d
			}
		}
		s.open[tapKey{ev.Pod, r.Id}] = &tapReq{key: k}
	case *tapv1.TapEvent_ResponseEnd:
		r := e.ResponseEnd
		tk := tapKey{ev.Pod, r.Id}
		req, ok := s.open[tk]
		if !ok {
			return
		}
		delete(s.open, tk)
		ms := float64(r.SinceRequestInitUs) / 1000
		row := s.rows[req.key]
		if row == nil {
			row = &topRow{Source: req.key.src, Destination: req.key.dst, Method: req.key.method, Path: req.key.path,
				Best: math.Inf(1), Worst: math.Inf(-1)}
			s.rows[req.key] = row
		}
		row.Count++
		row.Best, row.Worst, row.Last = math.Min(row.Best, ms), math.Max(row.Worst, ms), ms
		if !req.failed && r.Error == "" && r.GrpcStatus <= 0 {
			s.success[req.key]++
		}
	case *tapv1.TapEvent_ResponseInit:
		r := e.ResponseInit
		if req, ok := s.open[tapKey{ev.Pod, r.Id}]; ok && r.HttpStatus >= 500 {
			req.failed = true
		}
	}
}

var _ topSource = (*tapTopSource)(nil)

// tapTopTargets resolves top's target to the pods to tap on the local
// mesh; ok is false when tap cannot serve it (then top reads the metrics
// API).
func tapTopTargets(stateDir, kind, ns, name string) ([]tap.Target, bool) {
	switch kind {
	case "namespace":
		ns = name
	case "deployment", "pod":
	default:
		return nil, false
	}
	targets, err := localTapTargets(stateDir, kind, ns, name)
	if err != nil {
		return nil, false
	}
	return targets, true
}
