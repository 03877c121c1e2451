package pipeline

import (
	"strconv"

	"github.com/linkerd-go/linkerd/proxy/metrics"
	"github.com/linkerd-go/linkerd/proxy/transport"
)

// Classify returns the response_total labels of a finished response:
// status 0 when none arrived, grpcStatus -1 when there is none to report.
// A response is a failure when the exchange failed, its status is 5xx, or
// its gRPC status is not OK.
func Classify(status int, grpcStatus int32, err error) metrics.ResponseKey {
	k := metrics.ResponseKey{Status: uint16(status), GRPCStatus: grpcStatus}
	k.Failure = err != nil || status >= 500 || grpcStatus > 0
	if err != nil {
		k.Error = transport.ErrorReason(err)
	}
	return k
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
