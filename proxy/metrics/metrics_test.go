package metrics

import (
	"bytes"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
)

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

func TestExposition(t *testing.T) {
	r := NewRegistry()
	target := Labels{{"direction", "outbound"}, {"target_addr", "10.0.0.1:80"}}
	h := r.HTTP(target.With(Label{"authority", "web:80"}))
	h.Request()
	h.Request()
	h.Response(ResponseKey{Status: 200, GRPCStatus: -1})
	h.Response(ResponseKey{Status: 200, GRPCStatus: 2, Failure: true})
	h.Latency(200, 7*time.Millisecond)
	h.Latency(200, 700*time.Microsecond)

	// Label sets may differ within a family (dst_deployment vs dst_statefulset).
	a := r.TCP(target.With(Label{"peer", "dst"}, Label{"dst_deployment", "web"}))
	b := r.TCP(target.With(Label{"peer", "dst"}, Label{"dst_statefulset", "db"}))
	a.Open()
	a.AddRead(10)
	a.AddWrite(3)
	a.Close(nil)
	b.Open()
	b.Close(&wrapped{syscall.ECONNRESET})
	r.Counter("outbound_tcp_errors_total", Labels{{"error", "connect_timeout"}}).Inc()

	out := scrape(t, r)
	for _, want := range []string{
		`request_total{authority="web:80",direction="outbound",target_addr="10.0.0.1:80"} 2`,
		`response_total{authority="web:80",classification="success",direction="outbound",error="",grpc_status="",status_code="200",target_addr="10.0.0.1:80"} 1`,
		`response_total{authority="web:80",classification="failure",direction="outbound",error="",grpc_status="2",status_code="200",target_addr="10.0.0.1:80"} 1`,
		`response_latency_ms_bucket{authority="web:80",direction="outbound",status_code="200",target_addr="10.0.0.1:80",le="1"} 1`,
		`response_latency_ms_bucket{authority="web:80",direction="outbound",status_code="200",target_addr="10.0.0.1:80",le="5"} 1`,
		`response_latency_ms_bucket{authority="web:80",direction="outbound",status_code="200",target_addr="10.0.0.1:80",le="10"} 2`,
		`response_latency_ms_count{authority="web:80",direction="outbound",status_code="200",target_addr="10.0.0.1:80"} 2`,
		`tcp_open_total{direction="outbound",dst_deployment="web",peer="dst",target_addr="10.0.0.1:80"} 1`,
		`tcp_read_bytes_total{direction="outbound",dst_deployment="web",peer="dst",target_addr="10.0.0.1:80"} 10`,
		`tcp_write_bytes_total{direction="outbound",dst_deployment="web",peer="dst",target_addr="10.0.0.1:80"} 3`,
		`tcp_open_connections{direction="outbound",dst_deployment="web",peer="dst",target_addr="10.0.0.1:80"} 0`,
		`tcp_close_total{direction="outbound",dst_deployment="web",errno="",peer="dst",target_addr="10.0.0.1:80"} 1`,
		`tcp_close_total{direction="outbound",dst_statefulset="db",errno="ECONNRESET",peer="dst",target_addr="10.0.0.1:80"} 1`,
		`outbound_tcp_errors_total{error="connect_timeout"} 1`,
		`proxy_build_info{`,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s\n--- scrape:\n%s", want, out)
		}
	}
}

type wrapped struct{ err error }

func (w *wrapped) Error() string { return "read: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

func TestErrno(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("plain"), ""},
		{syscall.ECONNREFUSED, "ECONNREFUSED"},
		{&wrapped{syscall.EPIPE}, "EPIPE"},
	} {
		if got := Errno(tc.err); got != tc.want {
			t.Errorf("Errno(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	h := NewHistogram(LatencyBucketsMs)
	for _, v := range []float64{0.5, 1, 1.5, 50000, 60000} {
		h.Observe(v)
	}
	count, sum, buckets := h.snapshot()
	if count != 5 || sum != 0.5+1+1.5+50000+60000 {
		t.Fatalf("count %d sum %v", count, sum)
	}
	for le, want := range map[float64]uint64{1: 2, 2: 3, 40000: 3, 50000: 4} {
		if buckets[le] != want {
			t.Errorf("bucket le=%v: %d, want %d", le, buckets[le], want)
		}
	}
}

func BenchmarkHTTPResponse(b *testing.B) {
	r := NewRegistry()
	h := r.HTTP(Labels{{"direction", "inbound"}})
	k := ResponseKey{Status: 200, GRPCStatus: -1}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Request()
			h.Response(k)
			h.Latency(200, time.Millisecond)
		}
	})
}
