package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// Relay is the HTTP/2 client engine for a request that arrived on a server
// stream: it forwards the request on a stream of a pooled connection to the
// request's endpoint (plaintext to an application, mTLS to a peer proxy,
// as the pool's dialer decides) and relays the response, frame by frame,
// with trailers, resets in both directions and flow control end to end.
// The server engine gets one from Pool.Relay, runs its Forward as the
// chain's terminal, then calls Respond or Fail, then Release.
type Relay struct {
	pool  *Pool
	owned []string
	st    *Stream // the client's
	head  Head
	px    *pipeline.Exchange
	up    *Stream // the endpoint's
	uhead Head

	fields   []Field
	body     chan error
	streamed bool
	whole    int // body bytes sent from st's buffer with the head, not yet discarded
	// bodyless: the request had no body or trailers (it can be sent again).
	bodyless bool
}

var relays = sync.Pool{New: func() any { return &Relay{body: make(chan error, 1)} }}

// Relay returns the client engine for the request on st, whose head is
// head; fields named in owned (those only the proxy sets) are not
// forwarded.
func (p *Pool) Relay(st *Stream, head Head, owned []string) *Relay {
	r := relays.Get().(*Relay)
	r.pool, r.st, r.head, r.owned = p, st, head, owned
	return r
}

// bodyGrace is how long a response that ended may wait for the request
// body to finish streaming before the request stream is cut.
const bodyGrace = 50 * time.Millisecond

// Forward implements pipeline.Forwarder.
func (r *Relay) Forward(ctx context.Context, px *pipeline.Exchange) error {
	r.px = px
	r.fields = r.requestFields(r.fields[:0], px)
	for attempt := 0; ; attempt++ {
		err := r.try(ctx, px)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrHeaderListTooLarge) {
			return &pipeline.ClientError{Status: http.StatusRequestHeaderFieldsTooLarge, Err: err}
		}
		if attempt > 0 || r.streamed || !errors.Is(err, ErrUnprocessed) {
			return fmt.Errorf("exchange with %s over HTTP/2: %w", px.Endpoint.Addr, err)
		}
		r.closeUp()
	}
}

// requestFields are the request's fields as forwarded: pseudo-header
// fields and the others except hop-by-hop and owned ones (TE: trailers
// kept), then the chain's fields.
func (r *Relay) requestFields(dst []Field, px *pipeline.Exchange) []Field {
	for _, f := range r.head.Fields {
		if f.Name == "te" {
			if f.Value == "trailers" {
				dst = append(dst, f)
			}
			continue
		}
		if pipeline.HopByHop(f.Name) || r.isOwned(f.Name) || px.Edit != nil && pipeline.Removes(px.Edit.Remove, f.Name) {
			continue
		}
		if e := px.Edit; e != nil {
			switch {
			case f.Name == ":authority" && e.Authority != "":
				f.Value = e.Authority
			case f.Name == ":path" && e.Path != "":
				f.Value = e.Path
			}
		}
		dst = append(dst, f)
	}
	for _, f := range px.Fields {
		dst = append(dst, Field{Name: strings.ToLower(f.Name), Value: f.Value})
	}
	return dst
}

func (r *Relay) isOwned(name string) bool {
	for _, o := range r.owned {
		if strings.EqualFold(name, o) {
			return true
		}
	}
	return false
}

// try opens the upstream stream, sends the body (or starts streaming it)
// and waits for the final response head, forwarding interim ones.
func (r *Relay) try(ctx context.Context, px *pipeline.Exchange) error {
	cc, err := r.pool.Get(ctx, px.Endpoint)
	if err != nil {
		return err
	}
	st := r.st
	var body []byte
	end := false
	if st.Done() && len(st.Trailers()) == 0 && st.Err() == nil {
		// The whole request is here: it goes out with the head, and stays
		// in st's buffer until a response arrives, for a second attempt.
		body, _ = st.Peek(false)
		end = true
	}
	r.bodyless = end && len(body) == 0
	up, err := cc.Open(r.fields, body, end)
	if err != nil {
		return err
	}
	r.up = up
	r.whole = len(body)
	// The client going away ends the upstream stream too.
	st.OnReset(up.Cancel)
	// The context ending (a route's timeout) stops the wait for the head.
	defer context.AfterFunc(ctx, func() {
		if pipeline.TimedOut(ctx) {
			up.Cancel()
		}
	})()
	if !end {
		r.streamed = true
		go r.streamBody()
	}
	for {
		head, err := up.ReadHead()
		if err != nil {
			return err
		}
		if head.Status >= 200 {
			r.uhead = head
			break
		}
		if err := st.WriteInterim(responseFields(r.fields[:0], head)); err != nil {
			return fmt.Errorf("forward interim response: %w", err)
		}
	}
	if r.whole > 0 {
		st.Discard(r.whole)
		r.whole = 0
	}
	px.Responded(r.uhead.Status)
	if px.GRPC {
		if code, ok := pipeline.ParseGRPCStatus(r.uhead.Value("grpc-status")); ok {
			px.GRPCStatus = code // trailers-only
		}
	}
	return nil
}

// streamBody copies the request body from the client's stream upstream as
// it arrives, then its trailers. When the client's stream fails, the
// upstream stream is cancelled: the request cannot end.
func (r *Relay) streamBody() {
	st, up := r.st, r.up
	var err error
	for {
		b, perr := st.Peek(true)
		if len(b) > 0 {
			if err = up.WriteData(b, false); err != nil {
				break
			}
			st.Discard(len(b))
		}
		if perr == io.EOF {
			err = up.WriteTrailers(trailerFields(st.Trailers()))
			break
		}
		if perr != nil {
			err = perr
			up.Cancel()
			break
		}
	}
	r.body <- err
}

// waitBody waits for a streamed request body, at most grace, then cuts it.
func (r *Relay) waitBody(grace time.Duration) error {
	if !r.streamed {
		return nil
	}
	r.streamed = false
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-r.body:
		return err
	case <-t.C:
	}
	// Cut both sides: the body copy may wait on the client as well as on
	// the endpoint.
	r.up.Cancel()
	r.st.Cancel()
	return <-r.body
}

// Respond relays the final response to the client's stream and finishes
// the exchange.
func (r *Relay) Respond() {
	st, up, px := r.st, r.up, r.px
	fields := responseFields(r.fields[:0], r.uhead)
	if px.Edit != nil {
		fields = EditFields(fields[:0], fields, px.Edit)
	}
	var err error
	if up.Done() && up.Buffered() == 0 && len(up.Trailers()) == 0 && up.Err() == nil {
		err = st.Respond(fields, nil, true)
	} else if err = st.Respond(fields, nil, false); err == nil {
		err = r.copyResponseBody()
	}
	if err != nil {
		st.Cancel()
		up.Cancel()
	}
	// The request body's fate does not change the outcome: a server may
	// answer before reading all of it, and a client that went away shows
	// in st's error below.
	_ = r.waitBody(bodyGrace)
	if err != nil && st.Err() != nil && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("client cancelled the request: %w: %w", context.Canceled, err)
	}
	px.Finish(err)
}

// copyResponseBody copies DATA, then trailers, from upstream to the client.
func (r *Relay) copyResponseBody() error {
	st, up, px := r.st, r.up, r.px
	for {
		b, err := up.Peek(true)
		if len(b) > 0 {
			if werr := st.WriteData(b, false); werr != nil {
				return fmt.Errorf("write response to client: %w", werr)
			}
			up.Discard(len(b))
		}
		if err == io.EOF {
			tr := up.Trailers()
			if px.GRPC {
				for _, f := range tr {
					if f.Name == "grpc-status" {
						if code, ok := pipeline.ParseGRPCStatus(f.Value); ok {
							px.GRPCStatus = code
						}
					}
				}
			}
			if werr := st.WriteTrailers(trailerFields(tr)); werr != nil {
				return fmt.Errorf("write response to client: %w", werr)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read response from %s: %w", px.Endpoint.Addr, err)
		}
	}
}

// Fail answers a request that could not be forwarded (err from Forward)
// and finishes the exchange. The answer goes out first: a client still
// sending its request gets it, then the request's stream is cut.
func (r *Relay) Fail(err error) {
	px := r.px
	if r.st.Err() != nil {
		err = fmt.Errorf("client cancelled the request: %w", context.Canceled)
	}
	_ = RespondAnswer(r.st, px.Fail(0, err), &r.fields)
	_ = r.waitBody(bodyGrace)
	r.closeUp()
	px.Finish(nil)
}

// closeUp ends the upstream stream, if any.
// Replayable implements pipeline.Replayer: a request without a body can
// be sent again.
func (r *Relay) Replayable() bool { return r.bodyless && !r.streamed }

// DiscardResponse implements pipeline.Replayer: the last attempt's stream
// is closed.
func (r *Relay) DiscardResponse() {
	r.closeUp()
	r.uhead = Head{}
}

func (r *Relay) closeUp() {
	if r.up != nil {
		r.st.OnReset(nil)
		r.up.Close()
		r.up = nil
	}
}

// Release ends the relay's use of the streams (the client's is not
// closed) and recycles r.
func (r *Relay) Release() {
	r.closeUp()
	body := r.body
	*r = Relay{body: body, fields: r.fields[:0]}
	relays.Put(r)
}

// RespondAnswer sends the proxy's answer a as a complete response on st;
// fields is scratch space.
func RespondAnswer(st *Stream, a *pipeline.Answer, fields *[]Field) error {
	f := append((*fields)[:0], Field{Name: ":status", Value: StatusValue(a.Status)})
	for _, af := range a.Fields {
		f = append(f, Field{Name: af.Name, Value: af.Value})
	}
	f = append(f, Field{Name: "content-length", Value: strconv.Itoa(len(a.Body))})
	*fields = f
	return st.Respond(f, []byte(a.Body), true)
}

// responseFields are a response head's fields as relayed: hop-by-hop ones
// left out.
// EditFields appends to dst the response fields fs less those e removes,
// then e's (names in lower case); dst may be fs[:0].
func EditFields(dst, fs []Field, e *pipeline.Edit) []Field {
	for _, f := range fs {
		if !pipeline.Removes(e.RespRemove, f.Name) {
			dst = append(dst, f)
		}
	}
	for _, f := range e.RespFields {
		dst = append(dst, Field{Name: strings.ToLower(f.Name), Value: f.Value})
	}
	return dst
}

func responseFields(dst []Field, h Head) []Field {
	dst = append(dst, Field{Name: ":status", Value: StatusValue(h.Status)})
	for _, f := range h.Fields {
		if len(f.Name) > 0 && f.Name[0] == ':' || pipeline.HopByHop(f.Name) {
			continue
		}
		dst = append(dst, f)
	}
	return dst
}

// trailerFields are the trailers as relayed (the same slice when nothing is
// left out, which is the rule).
func trailerFields(tr []Field) []Field {
	for i, f := range tr {
		if pipeline.HopByHop(f.Name) || len(f.Name) > 0 && f.Name[0] == ':' {
			out := append([]Field(nil), tr[:i]...)
			for _, f := range tr[i+1:] {
				if !pipeline.HopByHop(f.Name) && !(len(f.Name) > 0 && f.Name[0] == ':') {
					out = append(out, f)
				}
			}
			return out
		}
	}
	return tr
}

// StatusValue renders a :status value, without allocating for common codes.
func StatusValue(code int) string {
	switch code {
	case http.StatusOK:
		return "200"
	case http.StatusNoContent:
		return "204"
	case http.StatusNotModified:
		return "304"
	case http.StatusNotFound:
		return "404"
	case http.StatusInternalServerError:
		return "500"
	case http.StatusBadGateway:
		return "502"
	case http.StatusServiceUnavailable:
		return "503"
	}
	return strconv.Itoa(code)
}
