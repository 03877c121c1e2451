package pipeline

import (
	"context"
	"errors"
	"strconv"

	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// Classify returns the response_total labels of a finished response:
// status 0 when none arrived, grpcStatus -1 when there is none to report.
// A response is a failure when the exchange failed, its status is 5xx, or
// its gRPC status is not OK. A request the client cancelled (it went away
// or reset its stream) or sent malformed (ClientError) is not a failure of
// the server: a cancel keeps its error label, a malformed request is an
// ordinary (4xx) response.
func Classify(status int, grpcStatus int32, err error) metrics.ResponseKey {
	k := metrics.ResponseKey{Status: uint16(status), GRPCStatus: grpcStatus}
	if err != nil && IsClientError(err) {
		if errors.Is(err, context.Canceled) {
			k.Error = transport.ErrorReason(err)
		}
		return k
	}
	k.Failure = err != nil || status >= 500 || grpcStatus > 0
	if err != nil {
		k.Error = transport.ErrorReason(err)
	}
	return k
}

// ClientError is a request the proxy did not forward in full because the
// client sent it malformed (such as a broken chunked body): it is answered
// with Status (400) and is not a failure of the server.
type ClientError struct {
	Status int
	Err    error
}

func (e *ClientError) Error() string { return "malformed request: " + e.Err.Error() }
func (e *ClientError) Unwrap() error { return e.Err }

// IsClientError reports whether err was caused by the client: it
// cancelled the request or sent it malformed.
func IsClientError(err error) bool {
	var ce *ClientError
	return errors.Is(err, context.Canceled) || errors.As(err, &ce)
}

// ParseGRPCStatus parses a grpc-status value.
func ParseGRPCStatus(v string) (int32, bool) {
	if v == "" || len(v) > 3 {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return int32(n), true
}

// IsGRPC reports whether a content-type is gRPC's.
func IsGRPC(contentType string) bool {
	const p = "application/grpc"
	return len(contentType) >= len(p) && contentType[:len(p)] == p
}
