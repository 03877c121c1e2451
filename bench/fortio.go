package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Load shape shared by every scenario.
const (
	connections = 16
	payloadSize = 128 // bytes POSTed by HTTP scenarios and echoed back
	// histogramResolution is fortio's -r: the width of the smallest
	// histogram buckets, in seconds. fortio's default (1 ms) is coarser
	// than the latencies measured here.
	histogramResolution = "0.00001"
	percentiles         = "50,99,99.9"
)

// scenario is one load shape.
type scenario struct {
	Name string
	GRPC bool    // fortio grpc ping instead of HTTP/1.1 POST
	QPS  float64 // requested rate; -1 means as fast as possible
}

// scenarios are every load shape, in table order.
var scenarios = []scenario{
	{Name: "http-1000", QPS: 1000},
	{Name: "http-4000", QPS: 4000},
	{Name: "http-max", QPS: -1},
	{Name: "grpc-1000", GRPC: true, QPS: 1000},
	{Name: "grpc-max", GRPC: true, QPS: -1},
}

// endpoints are where a contender's client sends its load.
type endpoints struct {
	HTTP string // URL, e.g. http://10.248.3.3:8080/
	GRPC string // host:port of the ping service
}

// loadArgs returns the arguments of `fortio load` for s against e, running
// for d and writing its results as JSON to jsonPath ("" writes none).
func (s scenario) loadArgs(e endpoints, d time.Duration, jsonPath string) []string {
	args := []string{
		"load",
		"-quiet",
		"-qps", strconv.FormatFloat(s.QPS, 'f', -1, 64),
		"-c", strconv.Itoa(connections),
		"-t", d.String(),
		"-r", histogramResolution,
		"-p", percentiles,
	}
	if jsonPath != "" {
		args = append(args, "-json", jsonPath)
	}
	if s.GRPC {
		return append(args, "-grpc", "-ping", e.GRPC)
	}
	return append(args, "-payload-size", strconv.Itoa(payloadSize), e.HTTP)
}

// okCode is the fortio return code of a successful call.
func (s scenario) okCode() string {
	if s.GRPC {
		return "SERVING"
	}
	return "200"
}

// fortioResult is the part of fortio's JSON output the harness uses.
type fortioResult struct {
	RunType           string
	ActualQPS         float64
	ActualDuration    int64 // ns
	DurationHistogram struct {
		Count       int64
		Percentiles []struct {
			Percentile float64
			Value      float64 // seconds
		}
	}
	RetCodes map[string]int64
}

// loadStats are the figures taken from one fortio run.
type loadStats struct {
	QPS      float64
	Duration time.Duration
	Requests int64 // every call made, failed or not
	Errors   int64 // calls whose code was not okCode
	P50      time.Duration
	P99      time.Duration
	P999     time.Duration
}

// parseFortio extracts the load statistics from fortio's JSON output; calls
// whose return code is not okCode count as errors.
func parseFortio(b []byte, okCode string) (loadStats, error) {
	var r fortioResult
	if err := json.Unmarshal(b, &r); err != nil {
		return loadStats{}, fmt.Errorf("parse fortio json: %w", err)
	}
	var st loadStats
	for code, n := range r.RetCodes {
		st.Requests += n
		if code != okCode {
			st.Errors += n
		}
	}
	if st.Requests != r.DurationHistogram.Count {
		return loadStats{}, fmt.Errorf("parse fortio json: return codes sum to %d calls, histogram has %d", st.Requests, r.DurationHistogram.Count)
	}
	if st.Requests == 0 {
		return loadStats{}, fmt.Errorf("parse fortio json: no calls completed")
	}
	st.QPS = r.ActualQPS
	st.Duration = time.Duration(r.ActualDuration)
	want := map[float64]*time.Duration{50: &st.P50, 99: &st.P99, 99.9: &st.P999}
	for _, p := range r.DurationHistogram.Percentiles {
		if dst, ok := want[p.Percentile]; ok {
			*dst = time.Duration(math.Round(p.Value * float64(time.Second)))
			delete(want, p.Percentile)
		}
	}
	if len(want) > 0 {
		return loadStats{}, fmt.Errorf("parse fortio json: %d of the percentiles %s missing", len(want), percentiles)
	}
	return st, nil
}
