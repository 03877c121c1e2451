package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

// Live calls: the dashboard's tap. GET /api/namespaces/{ns}/tap streams a
// resource's calls as Server-Sent Events, from the tap service's
// TapByResource. Every stream is bounded: it ends after a maximum duration,
// relays at most a maximum number of calls per second (the tap service is
// asked for no more, and any excess is dropped and counted), at most
// MaxTapStreams run at once, and it ends the upstream tap as soon as the
// browser goes away.
const (
	// DefaultTapDuration is a live-calls stream's length when the request
	// names none; MaxTapDuration its most.
	DefaultTapDuration = time.Minute
	MaxTapDuration     = 5 * time.Minute
	// DefaultTapRPS is the calls per second relayed when the request names
	// no rate (as `linkerd viz tap`'s default --max-rps: a workload's
	// outbound calls are not crowded out by its inbound ones); MaxTapRPS
	// the most a request may ask for.
	DefaultTapRPS = 100
	MaxTapRPS     = 100
	// MaxTapStreams is how many live-calls streams run at once.
	MaxTapStreams = 16
	// maxPending bounds the requests seen without their end yet.
	maxPending = 1024
)

// TapKinds are the resource kinds the dashboard taps.
var TapKinds = []string{"namespace", "deployment", "statefulset", "daemonset", "job", "pod"}

// Call is one live call as the dashboard shows it: a request a pod's
// proxy saw from its start to its end.
type Call struct {
	// Namespace and Pod are the tapped pod.
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	// Direction is "inbound" (the pod served it) or "outbound" (it called).
	Direction   string `json:"direction"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// DstResource names the destination's workload when discovery knew it
	// (outbound calls), as "deployment/voting".
	DstResource string `json:"dstResource,omitempty"`
	ClientID    string `json:"clientId,omitempty"`
	ServerID    string `json:"serverId,omitempty"`
	TLS         string `json:"tls,omitempty"`
	Method      string `json:"method"`
	Authority   string `json:"authority"`
	Path        string `json:"path"`
	// HTTPStatus is 0 when no response came.
	HTTPStatus uint32 `json:"httpStatus,omitempty"`
	// GRPCStatus is nil for a response that is not gRPC.
	GRPCStatus *int32 `json:"grpcStatus,omitempty"`
	// GRPCStatusName is the gRPC status code's name ("Unknown").
	GRPCStatusName string  `json:"grpcStatusName,omitempty"`
	Error          string  `json:"error,omitempty"`
	ProxyError     bool    `json:"proxyError,omitempty"`
	LatencyMs      float64 `json:"latencyMs"`
	// Failed is the call's classification: an error, a 5xx or a gRPC
	// status other than OK.
	Failed bool `json:"failed"`
}

// tapEnd is the last event of a stream that ended on its own.
type tapEnd struct {
	Reason  string `json:"reason"`
	Dropped int    `json:"dropped"`
}

func tapHTTPStatus(err error) int {
	switch status.Code(err) {
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.FailedPrecondition:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	default:
		return http.StatusBadGateway
	}
}

// tapMessage is err's message without gRPC's decoration.
func tapMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// parseTapResource parses "kind/name" of a tappable kind in namespace ns.
func parseTapResource(param, ns, s string) (*vizv1.Resource, error) {
	kind, name, ok := strings.Cut(s, "/")
	valid := ok && dnsName.MatchString(name)
	if valid {
		valid = false
		for _, k := range TapKinds {
			valid = valid || k == kind
		}
	}
	if !valid {
		return nil, fmt.Errorf("invalid %s %q (want KIND/NAME, KIND one of %s)", param, s, strings.Join(TapKinds, ", "))
	}
	return &vizv1.Resource{Kind: kind, Namespace: ns, Name: name}, nil
}

// tapRequest parses the live-calls query of r.
func tapRequest(r *http.Request) (*vizv1.TapByResourceRequest, time.Duration, error) {
	ns := r.PathValue("ns")
	if !dnsName.MatchString(ns) {
		return nil, 0, fmt.Errorf("invalid namespace name %q", ns)
	}
	q := r.URL.Query()
	target, err := parseTapResource("resource", ns, q.Get("resource"))
	if err != nil {
		return nil, 0, err
	}
	req := &vizv1.TapByResourceRequest{Target: target, MaxRps: DefaultTapRPS}
	if to := q.Get("to"); to != "" {
		toNS := q.Get("toNamespace")
		if toNS == "" {
			toNS = ns
		}
		if !dnsName.MatchString(toNS) {
			return nil, 0, fmt.Errorf("invalid namespace name %q", toNS)
		}
		if req.To, err = parseTapResource("to", toNS, to); err != nil {
			return nil, 0, err
		}
	}
	if s := q.Get("maxRps"); s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n < 1 || n > MaxTapRPS {
			return nil, 0, fmt.Errorf("invalid maxRps %q (want 1 to %d)", s, MaxTapRPS)
		}
		req.MaxRps = uint32(n)
	}
	if m, p, a := q.Get("method"), q.Get("path"), q.Get("authority"); m != "" || p != "" || a != "" {
		req.Match = &tapv1.Match{Method: m, PathPrefix: p, Authority: a}
	}
	d := DefaultTapDuration
	if s := q.Get("duration"); s != "" {
		d, err = time.ParseDuration(s)
		if err != nil || d < time.Second || d > MaxTapDuration {
			return nil, 0, fmt.Errorf("invalid duration %q (want 1s to %s)", s, MaxTapDuration)
		}
	}
	return req, d, nil
}

// tap serves the live calls of a resource as Server-Sent Events: "call"
// events (a Call each), then one "end" (the duration elapsed or the tap
// ended) or "error" event.
func (h *Handler) tap(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Tap == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("live calls need the tap service, which this web server is not configured with (-tap-addr)"))
		return
	}
	req, d, err := tapRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, errors.New("this connection cannot stream"))
		return
	}
	select {
	case h.tapSlots <- struct{}{}:
		defer func() { <-h.tapSlots }()
	default:
		writeError(w, http.StatusTooManyRequests, fmt.Errorf("too many live-calls streams (at most %d at once); close one", MaxTapStreams))
		return
	}

	// The duration ends the tap by cancelling it (not by a deadline the
	// tap service would see first and end the stream normally).
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel() // ends the upstream tap, whichever way this returns
	var elapsed atomic.Bool
	timer := time.AfterFunc(d, func() { elapsed.Store(true); cancel() })
	defer timer.Stop()
	stream, err := h.cfg.Tap.TapByResource(ctx, req)
	if err == nil {
		// The tap service sends its headers once the taps are set up;
		// an error before them (no such resource, no pod to tap) is the
		// request's answer.
		var md map[string][]string
		md, err = stream.Header()
		if err == nil && md == nil {
			_, err = stream.Recv()
			if err == nil {
				err = errors.New("the tap service sent an event before its headers")
			}
		}
	}
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		h.cfg.Log.Warn("tap failed", "target", req.GetTarget().GetKind()+"/"+req.GetTarget().GetName(), "namespace", req.GetTarget().GetNamespace(), "error", err)
		writeError(w, tapHTTPStatus(err), fmt.Errorf("tap: %s", tapMessage(err)))
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The browser knows the stream is open before the first call.
	if _, err := fmt.Fprint(w, ": tapping\n\n"); err != nil {
		return
	}
	flusher.Flush()

	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	calls := newCallMerger()
	limit := rateWindow{max: int(req.GetMaxRps())}
	for {
		ev, err := stream.Recv()
		if err != nil {
			switch {
			case r.Context().Err() != nil:
				// The browser went away; cancel ends the tap.
			case elapsed.Load():
				send("end", tapEnd{Reason: fmt.Sprintf("the live calls stop after %s; start them again to see more", d), Dropped: limit.dropped})
			case errors.Is(err, io.EOF):
				send("end", tapEnd{Reason: "the tap ended", Dropped: limit.dropped})
			default:
				send("error", map[string]string{"error": "tap: " + tapMessage(err)})
			}
			return
		}
		c := calls.add(ev)
		if c == nil || !limit.allow(time.Now()) {
			continue
		}
		if !send("call", c) {
			return
		}
	}
}

// rateWindow allows at most max events per second; it counts the others.
type rateWindow struct {
	max, n, dropped int
	start           time.Time
}

func (l *rateWindow) allow(now time.Time) bool {
	if now.Sub(l.start) >= time.Second {
		l.start, l.n = now, 0
	}
	if l.max > 0 && l.n >= l.max {
		l.dropped++
		return false
	}
	l.n++
	return true
}

// callMerger joins a request's events (its init, its response's init, its
// end) into one Call, complete at the end.
type callMerger struct {
	pending map[callKey]*Call
}

type callKey struct {
	ns, pod, direction string
	id                 uint64
}

func newCallMerger() *callMerger { return &callMerger{pending: map[callKey]*Call{}} }

// add takes an event; it returns the call it completes, or nil.
func (m *callMerger) add(ev *vizv1.TapByResourceEvent) *Call {
	te := ev.GetEvent()
	key := callKey{ns: ev.GetNamespace(), pod: ev.GetPod(), direction: te.GetDirection()}
	switch e := te.GetEvent().(type) {
	case *tapv1.TapEvent_RequestInit:
		key.id = e.RequestInit.GetId()
		if len(m.pending) >= maxPending {
			// Requests whose end never came (their tap was cut): forget
			// them all rather than grow.
			clear(m.pending)
		}
		c := &Call{
			Namespace: ev.GetNamespace(), Pod: ev.GetPod(), Direction: te.GetDirection(),
			Source: te.GetSource(), Destination: te.GetDestination(),
			ClientID: te.GetClientId(), ServerID: te.GetServerId(), TLS: te.GetTls(),
			Method: e.RequestInit.GetMethod(), Authority: e.RequestInit.GetAuthority(), Path: e.RequestInit.GetPath(),
		}
		meta := te.GetDestinationMeta()
		for _, k := range WorkloadKinds {
			if n := meta[k]; n != "" {
				c.DstResource = k + "/" + n
				break
			}
		}
		if c.DstResource == "" && meta["service"] != "" {
			c.DstResource = "service/" + meta["service"]
		}
		m.pending[key] = c
	case *tapv1.TapEvent_ResponseInit:
		key.id = e.ResponseInit.GetId()
		if c := m.pending[key]; c != nil {
			c.HTTPStatus = e.ResponseInit.GetHttpStatus()
		}
	case *tapv1.TapEvent_ResponseEnd:
		key.id = e.ResponseEnd.GetId()
		c := m.pending[key]
		if c == nil {
			return nil
		}
		delete(m.pending, key)
		end := e.ResponseEnd
		c.LatencyMs = float64(end.GetSinceRequestInitUs()) / 1000
		c.Error, c.ProxyError = end.GetError(), end.GetProxyError()
		if g := end.GetGrpcStatus(); g >= 0 {
			c.GRPCStatus = &g
			c.GRPCStatusName = codes.Code(uint32(g)).String()
		}
		c.Failed = c.Error != "" || c.HTTPStatus >= 500 || (c.GRPCStatus != nil && *c.GRPCStatus != 0)
		return c
	}
	return nil
}
