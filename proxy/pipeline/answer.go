package pipeline

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Answer is the proxy's own answer to a request it could not forward.
type Answer struct {
	Status int
	// Fields are the response's header fields (names in lower case).
	Fields []Field
	Body   string
}

// Fail answers x, which failed with err before its response head arrived,
// and records the failure: gRPC clients get a trailers-only UNAVAILABLE
// response, others status (or, when status is 0, the status err calls
// for); both carry l5d-proxy-error with the reason. Every engine answers
// with it.
func (x *Exchange) Fail(status int, err error) *Answer {
	var ae *AnswerError
	if errors.As(err, &ae) {
		// A layer's deliberate answer (a route's redirect): sent as is,
		// not a failure.
		x.Answer, x.Status, x.HeadAt = ae.Answer, ae.Answer.Status, time.Now()
		return ae.Answer
	}
	if status == 0 {
		status = ErrorStatus(x, err)
	}
	a := ErrorAnswer(status, err, x.GRPC)
	if x.GRPC {
		x.GRPCStatus = ErrorGRPCStatus(err)
	}
	x.Answer = a
	x.Status = a.Status
	x.HeadAt = time.Now()
	if x.Err == nil {
		x.Err = err
	}
	return a
}

// AnswerError is returned by a layer that answers the request itself
// rather than forwarding it (an HTTPRoute's RequestRedirect): Fail sends
// its Answer unchanged (no l5d-proxy-error) and the exchange does not
// count as failed.
type AnswerError struct {
	Answer *Answer
	Reason string
}

func (e *AnswerError) Error() string { return e.Reason }

// StatusError is a failure that calls for an answer with its status (a
// malformed request: 400; a denied one: 403...).
type StatusError struct {
	Status int
	// GRPCStatus is the gRPC clients' answer (0: UNAVAILABLE, 14), e.g.
	// PERMISSION_DENIED (7) for a denied request.
	GRPCStatus int32
	Err        error
}

// ErrorGRPCStatus is the grpc-status of the answer to a gRPC request that
// failed with err: its StatusError's GRPCStatus, else UNAVAILABLE (14).
func ErrorGRPCStatus(err error) int32 {
	var se *StatusError
	if errors.As(err, &se) && se.GRPCStatus != 0 {
		return se.GRPCStatus
	}
	return 14
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// ErrorAnswer is the proxy's answer with status to a request that failed
// with err: for gRPC a trailers-only response (grpc-status from
// ErrorGRPCStatus, UNAVAILABLE unless err says otherwise), otherwise the status with
// the reason as a plain-text body; both carry l5d-proxy-error.
func ErrorAnswer(status int, err error, grpc bool) *Answer {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if grpc {
		return &Answer{Status: http.StatusOK, Fields: []Field{
			{Name: HeaderProxyError, Value: msg},
			{Name: "content-type", Value: "application/grpc"},
			{Name: "grpc-status", Value: strconv.Itoa(int(ErrorGRPCStatus(err)))},
			{Name: "grpc-message", Value: msg},
		}}
	}
	return &Answer{Status: status, Body: msg + "\n", Fields: []Field{
		{Name: HeaderProxyError, Value: msg},
		{Name: "content-type", Value: "text/plain; charset=utf-8"},
	}}
}

// timeout is implemented by errors that are timeouts.
type timeout interface{ Timeout() bool }

// ErrorStatus is the status of the answer to a request that could not be
// forwarded: 503 when it found no endpoint, 504 on a timeout, 502 when the
// exchange with the endpoint failed.
func ErrorStatus(x *Exchange, err error) int {
	var te timeout
	var se *StatusError
	var ce *ClientError
	switch {
	case errors.As(err, &se):
		return se.Status
	case errors.As(err, &ce):
		return ce.Status
	case x.Endpoint == nil:
		return http.StatusServiceUnavailable
	case errors.As(err, &te) && te.Timeout():
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}
