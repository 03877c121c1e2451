package pipeline

import (
	"errors"
	"net/http"
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
	if status == 0 {
		status = ErrorStatus(x, err)
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	a := &Answer{Status: status}
	if x.GRPC {
		a.Status = http.StatusOK
		a.Fields = []Field{
			{Name: HeaderProxyError, Value: msg},
			{Name: "content-type", Value: "application/grpc"},
			{Name: "grpc-status", Value: "14"}, // UNAVAILABLE
			{Name: "grpc-message", Value: msg},
		}
		x.GRPCStatus = 14
	} else {
		a.Fields = []Field{
			{Name: HeaderProxyError, Value: msg},
			{Name: "content-type", Value: "text/plain; charset=utf-8"},
		}
		a.Body = msg + "\n"
	}
	x.Answer = a
	x.Status = a.Status
	x.HeadAt = time.Now()
	if x.Err == nil {
		x.Err = err
	}
	return a
}

// StatusError is a failure that calls for an answer with its status (a
// malformed request: 400; a denied one: 403...).
type StatusError struct {
	Status int
	Err    error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// timeout is implemented by errors that are timeouts.
type timeout interface{ Timeout() bool }

// ErrorStatus is the status of the answer to a request that could not be
// forwarded: 503 when it found no endpoint, 504 on a timeout, 502 when the
// exchange with the endpoint failed.
func ErrorStatus(x *Exchange, err error) int {
	var te timeout
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return se.Status
	case x.Endpoint == nil:
		return http.StatusServiceUnavailable
	case errors.As(err, &te) && te.Timeout():
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}
