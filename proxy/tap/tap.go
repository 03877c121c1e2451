// Package tap lets the tap service watch the requests a proxy handles: a
// pipeline layer publishes request-init, response-init and response-end
// events to the taps attached through the proxy's tap API (Server, on the
// control port 4190, mTLS, for the tap service's identity only).
//
// A tap never slows the traffic it watches: with no tap attached the layer
// costs one atomic load; events go to each tap through a bounded queue and
// are dropped, and counted, when the tap reads too slowly; each tap admits
// at most its limit of requests per second.
package tap

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	"github.com/linkerd-go/linkerd/proxy/balance"
	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

const (
	// DefaultLimit is how many requests per second a tap admits when it
	// asks for none.
	DefaultLimit = 100
	// MaxLimit bounds what a tap may ask for.
	MaxLimit = 10000
	// queueLen is how many events wait for a slow tap before they are dropped.
	queueLen = 1024
)

// Hub is the set of taps attached to one proxy.
type Hub struct {
	n    atomic.Int32 // attached taps: the layer's fast check
	ids  atomic.Uint64
	mu   sync.Mutex             // serializes Attach and Detach
	taps atomic.Pointer[[]*Tap] // copied on write: the layer reads it lock-free

	dropped *metrics.Counter
}

// NewHub returns a Hub counting dropped events in reg (tap_events_dropped_total).
func NewHub(reg *metrics.Registry) *Hub {
	h := &Hub{}
	if reg != nil {
		h.dropped = reg.Counter("tap_events_dropped_total", nil)
	}
	return h
}

// Tap is one attached observer.
type Tap struct {
	match  *tapv1.Match
	limit  float64
	events chan queued
	// full is signalled when events holds a batch's worth, to have it sent
	// before the batch interval ends.
	full chan struct{}

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// Attach adds a tap for requests that match m, at most limit per second.
func (h *Hub) Attach(m *tapv1.Match, limit uint32) *Tap {
	if limit == 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	if m == nil {
		m = &tapv1.Match{}
	}
	t := &Tap{match: m, limit: float64(limit), tokens: float64(limit), last: time.Now(), events: make(chan queued, queueLen), full: make(chan struct{}, 1)}
	h.mu.Lock()
	var taps []*Tap
	if p := h.taps.Load(); p != nil {
		taps = append(taps, *p...)
	}
	taps = append(taps, t)
	h.taps.Store(&taps)
	h.n.Store(int32(len(taps)))
	h.mu.Unlock()
	return t
}

// Attached is the number of taps attached.
func (h *Hub) Attached() int { return int(h.n.Load()) }

// Detach removes t.
func (h *Hub) Detach(t *Tap) {
	h.mu.Lock()
	var taps []*Tap
	if p := h.taps.Load(); p != nil {
		for _, o := range *p {
			if o != t {
				taps = append(taps, o)
			}
		}
	}
	h.taps.Store(&taps)
	h.n.Store(int32(len(taps)))
	h.mu.Unlock()
}

// queued is an event waiting in a tap's queue, with the exchange state it
// is part of, released once the event is sent.
type queued struct {
	ev *tapv1.TapEvent
	st *state
}

// admit takes a token for one request.
func (t *Tap) admit(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tokens = min(t.limit, t.tokens+now.Sub(t.last).Seconds()*t.limit)
	t.last = now
	if t.tokens < 1 {
		return false
	}
	t.tokens--
	return true
}

func (t *Tap) matches(direction string, x *pipeline.Exchange) bool {
	m := t.match
	return (m.Direction == "" || m.Direction == direction) &&
		(m.Method == "" || strings.EqualFold(m.Method, x.Method)) &&
		(m.Authority == "" || m.Authority == x.Authority) &&
		(m.PathPrefix == "" || strings.HasPrefix(x.Path, m.PathPrefix))
}

func (h *Hub) send(t *Tap, st *state, ev *tapv1.TapEvent) {
	st.refs.Add(1)
	select {
	case t.events <- queued{ev, st}:
		if len(t.events) >= maxBatch {
			select {
			case t.full <- struct{}{}:
			default:
			}
		}
	default:
		st.release()
		if h.dropped != nil {
			h.dropped.Inc()
		}
	}
}

// state is a tapped exchange's: its three events are allocated with it.
// An event is shared, read-only, by the taps it was sent to: a state is
// reused (pooled) once the layer is done with it and every tap sent or
// dropped its events, which refs counts.
type state struct {
	refs   atomic.Int32
	id     uint64
	taps   []*Tap
	tapBuf [2]*Tap // taps' storage for the usual one or two
	sent   bool    // response-init sent

	reqEv, rspEv, endEv tapv1.TapEvent
	reqOne              tapv1.TapEvent_RequestInit
	rspOne              tapv1.TapEvent_ResponseInit
	endOne              tapv1.TapEvent_ResponseEnd
	req                 tapv1.RequestInit
	rsp                 tapv1.ResponseInit
	end                 tapv1.ResponseEnd
}

var states = sync.Pool{New: func() any { return new(state) }}

// release drops a reference to st, pooling it after the last.
func (st *state) release() {
	if st.refs.Add(-1) == 0 {
		*st = state{}
		states.Put(st)
	}
}

// Layer publishes the events of the requests it sees to the hub's taps.
// It sits just before the client engine, where the endpoint is known.
type Layer struct {
	Hub       *Hub
	Direction string

	// dsts caches what events say of an endpoint (its address and
	// metadata), shared read-only by the events: *balance.Endpoint →
	// *dstInfo. Endpoints are few and long-lived; the cache is dropped
	// when it grows past maxDsts.
	dsts  sync.Map
	ndsts atomic.Int32
}

// dstInfo is what events say of an endpoint.
type dstInfo struct {
	addr string
	// meta is the endpoint's destination metadata encoded once as the
	// TapEvent's destination_meta field (a map's wire form: an entry
	// message per key), set as the request-init's unknown fields: the
	// tap client decodes it as the map, and each event's marshalling
	// copies it rather than walking a map.
	meta protoreflect.RawFields
}

// metaField is TapEvent's destination_meta.
var metaField = (&tapv1.TapEvent{}).ProtoReflect().Descriptor().Fields().ByName("destination_meta").Number()

// encodeMeta encodes m as TapEvent's destination_meta field, by key.
func encodeMeta(m map[string]string) protoreflect.RawFields {
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(m)) {
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, k)
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendString(entry, m[k])
		b = protowire.AppendTag(b, metaField, protowire.BytesType)
		b = protowire.AppendBytes(b, entry)
	}
	return b
}

// maxDsts bounds Layer.dsts.
const maxDsts = 4096

func (l *Layer) dstInfo(ep *balance.Endpoint) *dstInfo {
	if v, ok := l.dsts.Load(ep); ok {
		return v.(*dstInfo)
	}
	d := &dstInfo{addr: pipeline.FormatAddr(ep.Addr)}
	if len(ep.Labels) > 0 {
		meta := make(map[string]string, len(ep.Labels))
		for _, lb := range ep.Labels {
			meta[strings.TrimPrefix(lb.Name, "dst_")] = lb.Value
		}
		d.meta = encodeMeta(meta)
	}
	if l.ndsts.Add(1) > maxDsts {
		l.dsts.Clear()
		l.ndsts.Store(1)
	}
	l.dsts.Store(ep, d)
	return d
}

// Serve implements pipeline.Layer.
func (l *Layer) Serve(ctx context.Context, x *pipeline.Exchange) error {
	if l.Hub.n.Load() == 0 {
		return x.Next(ctx)
	}
	st := l.start(x)
	if st == nil {
		return x.Next(ctx)
	}
	x.Tap = st
	err := x.Next(ctx)
	if err == nil {
		l.responseInit(st, x)
	}
	return err
}

// start admits x to the taps that want it and sends its request-init,
// the one event of the exchange that carries its direction, addresses,
// TLS and destination metadata (the response events carry only its id).
func (l *Layer) start(x *pipeline.Exchange) *state {
	p := l.Hub.taps.Load()
	if p == nil {
		return nil
	}
	var buf [2]*Tap
	admitted := buf[:0]
	for _, t := range *p {
		if t.matches(l.Direction, x) && t.admit(x.Start) {
			admitted = append(admitted, t)
		}
	}
	if len(admitted) == 0 {
		return nil
	}
	st := states.Get().(*state)
	st.refs.Store(1) // the layer's, until End
	st.taps = append(st.tapBuf[:0], admitted...)
	st.id = l.Hub.ids.Add(1)
	b := &st.reqEv
	b.Direction = l.Direction
	tls := x.Conn.TLS
	addrs := x.Conn.Addrs()
	b.Source = addrs.Client
	if l.Direction == transport.Inbound {
		b.Destination = addrs.OrigDst
		b.Tls, b.ClientId = string(tls.Mode), tls.ID
	} else {
		b.Tls = string(transport.TLSNoIdentity)
		if ep := x.Endpoint; ep != nil {
			d := l.dstInfo(ep)
			b.Destination = d.addr
			if d.meta != nil {
				b.ProtoReflect().SetUnknown(d.meta) // shared, read-only
			}
			if ep.Identity != "" {
				b.Tls, b.ServerId = string(transport.TLSMeshed), ep.Identity
			}
		}
	}
	scheme := "http"
	if tls.Mode == transport.TLSMeshed {
		scheme = "https"
	}
	st.req = tapv1.RequestInit{Id: st.id, Method: x.Method, Scheme: scheme, Authority: x.Authority, Path: x.Path}
	st.reqOne.RequestInit = &st.req
	b.Event = &st.reqOne
	l.publish(st, b)
	return st
}

func (l *Layer) responseInit(st *state, x *pipeline.Exchange) {
	st.sent = true
	st.rsp.Id = st.id
	st.rsp.SinceRequestInitUs = x.HeadAt.Sub(x.Start).Microseconds()
	st.rsp.HttpStatus = uint32(x.Status)
	st.rspOne.ResponseInit = &st.rsp
	st.rspEv.Event = &st.rspOne
	l.publish(st, &st.rspEv)
}

// End implements pipeline.Ender.
func (l *Layer) End(x *pipeline.Exchange) {
	st, ok := x.Tap.(*state)
	if !ok {
		return
	}
	if !st.sent && x.Status > 0 {
		l.responseInit(st, x) // the proxy's own answer
	}
	end := &st.end
	end.Id = st.id
	end.SinceRequestInitUs = time.Since(x.Start).Microseconds()
	end.GrpcStatus = x.GRPCStatus
	end.ProxyError = x.Answer != nil
	if x.Err != nil {
		end.Error = x.Err.Error()
	}
	st.endOne.ResponseEnd = end
	st.endEv.Event = &st.endOne
	l.publish(st, &st.endEv)
	x.Tap = nil
	st.release()
}

// publish sends ev to each of st's taps: the same message, which no one
// modifies once sent.
func (l *Layer) publish(st *state, ev *tapv1.TapEvent) {
	for _, t := range st.taps {
		l.Hub.send(t, st, ev)
	}
}

var (
	_ pipeline.Layer = (*Layer)(nil)
	_ pipeline.Ender = (*Layer)(nil)
)
