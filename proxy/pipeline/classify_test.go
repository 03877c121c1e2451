package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/proxy/metrics"
)

func TestClassifyClientErrors(t *testing.T) {
	t.Parallel()
	bad := &ClientError{Status: 400, Err: errors.New("bad chunk size")}
	for _, tt := range []struct {
		name    string
		status  int
		grpc    int32
		err     error
		want    metrics.ResponseKey
		outcome bool // the balancer hears of a failure
	}{
		{"ok", 200, -1, nil, metrics.ResponseKey{Status: 200, GRPCStatus: -1}, false},
		{"server error", 503, -1, nil, metrics.ResponseKey{Status: 503, GRPCStatus: -1, Failure: true}, true},
		{"i/o error", 502, -1, io.ErrUnexpectedEOF, metrics.ResponseKey{Status: 502, GRPCStatus: -1, Failure: true, Error: "unexpected"}, true},
		{"client cancel", 502, -1, fmt.Errorf("read: %w", context.Canceled), metrics.ResponseKey{Status: 502, GRPCStatus: -1, Error: "cancelled"}, false},
		{"client cancel, gRPC", 0, 14, context.Canceled, metrics.ResponseKey{GRPCStatus: 14, Error: "cancelled"}, false},
		{"malformed body", 400, -1, bad, metrics.ResponseKey{Status: 400, GRPCStatus: -1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if k := Classify(tt.status, tt.grpc, tt.err); k != tt.want {
				t.Errorf("Classify = %+v, want %+v", k, tt.want)
			}
			var x Exchange
			x.Reset(&Conn{}, HTTP1, time.Now())
			x.Status, x.GRPCStatus, x.Err = tt.status, tt.grpc, tt.err
			if got := x.Outcome() != nil; got != tt.outcome {
				t.Errorf("Outcome failed = %v, want %v", got, tt.outcome)
			}
		})
	}
}
