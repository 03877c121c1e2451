package pipeline

import (
	"context"
	"errors"
	"time"
)

// Layer is one step of the request path with one job. Serve does its work
// on the request, then calls x.Next to go on (or returns an error: the
// request is answered by the proxy). Code after x.Next runs once the
// response head arrived or the request failed.
type Layer interface {
	Serve(ctx context.Context, x *Exchange) error
}

// Ender is implemented by layers that act when the exchange ends, after
// its response body (or its failure): End runs once per exchange that
// reached the layer, in reverse order of the chain.
type Ender interface {
	End(x *Exchange)
}

// Forwarder is the end of the chain: a client engine that sends the
// request to x.Endpoint and returns once the final response head arrived
// (having called x.Responded), or fails.
type Forwarder interface {
	Forward(ctx context.Context, x *Exchange) error
}

// Owner is implemented by layers that set header fields only the proxy may
// set: the engines remove client-sent fields of these names.
type Owner interface {
	OwnedFields() []string
}

// Chain is a direction's layers, in order.
type Chain struct {
	layers []Layer
	enders []Ender // enders[i] is layers[i] as an Ender, or nil
	owned  []string
}

// NewChain returns the chain of layers, first to last.
func NewChain(layers ...Layer) *Chain {
	c := &Chain{layers: layers, enders: make([]Ender, len(layers))}
	for i, l := range layers {
		if e, ok := l.(Ender); ok {
			c.enders[i] = e
		}
		if o, ok := l.(Owner); ok {
			c.owned = append(c.owned, o.OwnedFields()...)
		}
	}
	return c
}

// OwnedFields returns the request fields only the proxy sets: client-sent
// ones are removed before forwarding.
func (c *Chain) OwnedFields() []string { return c.owned }

// Serve runs x through the chain to term.
func (c *Chain) Serve(ctx context.Context, x *Exchange, term Forwarder) error {
	x.chain, x.term, x.pos = c, term, 0
	return x.Next(ctx)
}

// Next runs the rest of the chain: the next layer, or the terminal.
func (x *Exchange) Next(ctx context.Context) error {
	i := x.pos
	x.pos++
	if i < len(x.chain.layers) {
		if i >= x.reached {
			x.reached = i + 1
		}
		return x.chain.layers[i].Serve(ctx, x)
	}
	return x.term.Forward(ctx, x)
}

// Redo rewinds the chain to just after the calling layer, so that it can
// call Next again (a retry). It must be called by the layer whose Serve is
// running, with the position it saw on entry (Pos).
func (x *Exchange) Redo(pos int) { x.pos = pos }

// Pos returns the position of the next layer to run.
func (x *Exchange) Pos() int { return x.pos }

// Finish ends the exchange: err is how the response body ended (nil when
// complete). The layers' End hooks run in reverse order, once.
func (x *Exchange) Finish(err error) {
	if x.finished {
		return
	}
	x.finished = true
	if err != nil && x.Err == nil {
		x.Err = err
	}
	if x.chain == nil {
		return
	}
	for i := x.reached - 1; i >= 0; i-- {
		if e := x.chain.enders[i]; e != nil {
			e.End(x)
		}
	}
}

// ErrFailedResponse tells the balancer a response was classified as a
// failure (5xx, non-OK gRPC status) although no I/O failed: failure accrual
// ejects endpoints that keep answering that way.
var ErrFailedResponse = errors.New("response classified as a failure")

// Outcome is what the balancer learns from a finished exchange: nothing
// bad when the client caused the error.
func (x *Exchange) Outcome() error {
	if x.Err != nil && IsClientError(x.Err) {
		return nil
	}
	k := x.Key()
	if x.Err == nil && k.Failure {
		return ErrFailedResponse
	}
	return x.Err
}

// ErrRequestTimeout is the cause of a context a layer cancelled because the
// request took too long (a route's timeout): client engines stop waiting
// for the response head when their context ends with it (TimedOut).
var ErrRequestTimeout = errors.New("request timed out")

// TimedOut reports whether ctx was cancelled with ErrRequestTimeout.
func TimedOut(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), ErrRequestTimeout)
}

// Replayer is implemented by client engines that can send a request again
// (a route's retry).
type Replayer interface {
	// Replayable reports whether the request just forwarded can be
	// forwarded again: it had no body, or its body is still whole in the
	// engine's buffer.
	Replayable() bool
	// DiscardResponse drops the last attempt's response (and its
	// connection or stream) before the request is forwarded again.
	DiscardResponse()
}

// Replayable reports whether x's client engine can forward it again.
func (x *Exchange) Replayable() bool {
	r, ok := x.term.(Replayer)
	return ok && r.Replayable()
}

// ResetAttempt prepares x for another attempt after one that ended with
// err (nil: a response the layer does not want): the balancer learns how
// the attempt went, its response is discarded, and what the layers after
// the caller decided is undone (fields beyond the first nfields). The
// caller then rewinds with Redo and calls Next. Only when Replayable.
func (x *Exchange) ResetAttempt(err error, nfields int) {
	if x.done != nil {
		prev := x.Err
		x.Err, x.keyReady = err, false
		x.done(x.Outcome())
		x.Err = prev
		x.done = nil
	}
	if r, ok := x.term.(Replayer); ok {
		r.DiscardResponse()
	}
	x.Status, x.GRPCStatus, x.HeadAt = 0, -1, time.Time{}
	x.Endpoint, x.OrigProto, x.keyReady = nil, false, false
	x.Fields = x.Fields[:nfields]
}
