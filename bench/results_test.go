package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{in: []float64{3}, want: 3},
		{in: []float64{5, 1, 3}, want: 3},
		{in: []float64{4, 1, 3, 2}, want: 2.5},
		{in: []float64{7, 7, 1}, want: 7},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("median reordered its input: %v", tt.in)
		}
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
}

func TestSummarize(t *testing.T) {
	runs := []runResult{
		{Config: "a", Scenario: "s1", Rep: 1, QPS: 100, P50us: 10, Requests: 1000, Errors: 1, Proxied: true, RSSLoadMiB: 5},
		{Config: "a", Scenario: "s1", Rep: 2, QPS: 300, P50us: 30, Requests: 3000, Proxied: true, RSSLoadMiB: 7},
		{Config: "a", Scenario: "s1", Rep: 3, QPS: 200, P50us: 90, Requests: 2000, Errors: 2, Proxied: true, RSSLoadMiB: 6},
		{Config: "b", Scenario: "s1", Rep: 1, QPS: 50, P50us: 5, Requests: 10},
		{Config: "a", Scenario: "s2", Rep: 1, QPS: 1, P50us: 1, Requests: 1, Proxied: true},
	}
	got := summarize(runs, []string{"b", "a", "missing"}, []string{"s1", "s2"})
	type cell struct {
		config, scenario string
		reps             int
		qps, p50, rss    float64
		requests, errors int64
		proxied          bool
	}
	want := []cell{
		{"b", "s1", 1, 50, 5, 0, 10, 0, false},
		{"a", "s1", 3, 200, 30, 6, 6000, 3, true},
		{"a", "s2", 1, 1, 1, 0, 1, 0, true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		c := cell{g.Config, g.Scenario, g.Reps, g.QPS, g.P50us, g.RSSLoadMiB, g.Requests, g.Errors, g.Proxied}
		if c != w {
			t.Errorf("row %d = %+v, want %+v", i, c, w)
		}
		if g.Rep != 0 {
			t.Errorf("row %d: Rep = %d, want 0 for medians", i, g.Rep)
		}
	}
}

func TestRatios(t *testing.T) {
	rows := []runResult{
		{Config: "direct", Scenario: "s", QPS: 1000, P50us: 100, P99us: 400},
		{Config: "ours", Scenario: "s", QPS: 800, P50us: 250, P99us: 900, CPUPerReqUs: 30, RSSLoadMiB: 10},
		{Config: "nginx", Scenario: "s", QPS: 900, P50us: 200, P99us: 400, CPUPerReqUs: 60, RSSLoadMiB: 20},
		{Config: "ours", Scenario: "only-ours", QPS: 1},
		{Config: "ours", Scenario: "no-direct", QPS: 10, P50us: 5},
		{Config: "nginx", Scenario: "no-direct", QPS: 20, P50us: 4},
	}
	got := ratios(rows, "ours", "direct", []string{"nginx", "absent"}, []string{"s", "only-ours", "no-direct"})
	if len(got) != 2 {
		t.Fatalf("got %d ratios, want 2: %+v", len(got), got)
	}
	r := got[0]
	if r.Scenario != "s" || r.Baseline != "nginx" || r.Ours != "ours" {
		t.Fatalf("first ratio is %+v", r)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"qps", r.QPS, 800.0 / 900},
		{"added p50", r.AddedP50, 150.0 / 100},
		{"cpu", r.CPUPerReq, 0.5},
		{"rss", r.RSSLoad, 0.5},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s ratio = %v, want %v", c.name, c.got, c.want)
		}
	}
	// nginx added no p99 over direct: not comparable.
	if !math.IsNaN(r.AddedP99) {
		t.Errorf("added p99 ratio = %v, want NaN", r.AddedP99)
	}
	if nd := got[1]; nd.Scenario != "no-direct" || !math.IsNaN(nd.AddedP50) || nd.QPS != 0.5 {
		t.Errorf("no-direct ratio = %+v, want QPS 0.5 and NaN latency", nd)
	}

	b, err := json.Marshal(got[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"added_p50":null`) || !strings.Contains(string(b), `"qps":0.5`) {
		t.Errorf("JSON %s: want null for NaN and numbers otherwise", b)
	}
}

func TestRunProblems(t *testing.T) {
	good := runResult{Config: "c", Scenario: "s", Rep: 1, QPS: 10, Requests: 20, P50us: 1, P99us: 2, P999us: 3, Proxied: true, RSSIdleMiB: 1, RSSLoadMiB: 2}
	tests := []struct {
		name   string
		mutate func(*runResult)
		reps   int
		want   string // substring of the only problem; "" for none
	}{
		{name: "good", mutate: func(*runResult) {}, reps: 1},
		{name: "errors", mutate: func(r *runResult) { r.Errors = 3 }, reps: 1, want: "3 of 20 requests failed"},
		{name: "no requests", mutate: func(r *runResult) { r.Requests, r.QPS = 0, 0 }, reps: 1, want: "no requests"},
		{name: "p99 below p50", mutate: func(r *runResult) { r.P99us = 0.5 }, reps: 1, want: "implausible latencies"},
		{name: "no rss", mutate: func(r *runResult) { r.RSSIdleMiB = 0 }, reps: 1, want: "proxy figures"},
		{name: "direct needs no rss", mutate: func(r *runResult) { r.Proxied, r.RSSIdleMiB, r.RSSLoadMiB = false, 0, 0 }, reps: 1},
		{name: "missing repetition", mutate: func(*runResult) {}, reps: 2, want: "1 of 2 repetitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.mutate(&r)
			got := runProblems([]runResult{r}, []string{"c"}, []string{"s"}, tt.reps)
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("problems %q, want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("problems %q, want one containing %q", got, tt.want)
			}
		})
	}
	if got := runProblems(nil, []string{"c"}, []string{"s", "t"}, 1); len(got) != 2 {
		t.Errorf("no runs: problems %q, want one per cell", got)
	}
}

func TestRotate(t *testing.T) {
	s := []int{1, 2, 3}
	tests := []struct {
		k    int
		want []int
	}{{0, []int{1, 2, 3}}, {1, []int{2, 3, 1}}, {2, []int{3, 1, 2}}, {4, []int{2, 3, 1}}}
	for _, tt := range tests {
		if got := rotate(s, tt.k); !slices.Equal(got, tt.want) {
			t.Errorf("rotate(%v, %d) = %v, want %v", s, tt.k, got, tt.want)
		}
	}
	if !slices.Equal(s, []int{1, 2, 3}) {
		t.Errorf("rotate changed its input: %v", s)
	}
}

func TestCompute(t *testing.T) {
	t0 := time.Unix(1000, 0)
	before := snapshot{
		at:      t0,
		machine: cpuTimes{Busy: 1000, Idle: 5000, Steal: 10},
		proxies: usage{CPU: 10 * time.Second, RSS: 8 << 20},
		server:  usage{CPU: 3 * time.Second},
	}
	after := snapshot{
		at:      t0.Add(2 * time.Second),
		machine: cpuTimes{Busy: 1000 + 300, Idle: 5100, Steal: 12}, // 3 s busy, 20 ms steal
		proxies: usage{CPU: 11 * time.Second, RSS: 12 << 20},       // 1 s of proxy CPU
		server:  usage{CPU: 3*time.Second + 500*time.Millisecond},
	}
	ls := loadStats{QPS: 10000, Requests: 20000, P50: 300 * time.Microsecond, P99: time.Millisecond, P999: 2 * time.Millisecond}
	got := compute("ours", "http-max", true, ls, 6<<20, before, after, 1200*time.Millisecond)
	want := runResult{
		Config: "ours", Scenario: "http-max", Proxied: true,
		QPS: 10000, Requests: 20000, P50us: 300, P99us: 1000, P999us: 2000,
		CPUPerReqUs:   50, // 1 s / 20000
		ProxyCPUPct:   50, // 1 s over 2 s
		LoadGenCPUPct: 85, // (1.2 + 0.5) s over 2 s
		ForeignCPUPct: 15, // (3 - 1 - 1.7) s over 2 s
		StealPct:      1,  // 20 ms over 2 s
		RSSIdleMiB:    6, RSSLoadMiB: 12,
	}
	approx := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	if got.Config != want.Config || got.Requests != want.Requests || got.RSSIdleMiB != want.RSSIdleMiB || got.RSSLoadMiB != want.RSSLoadMiB ||
		!approx(got.CPUPerReqUs, want.CPUPerReqUs) || !approx(got.ProxyCPUPct, want.ProxyCPUPct) ||
		!approx(got.LoadGenCPUPct, want.LoadGenCPUPct) || !approx(got.ForeignCPUPct, want.ForeignCPUPct) ||
		!approx(got.StealPct, want.StealPct) || !approx(got.P50us, want.P50us) || !approx(got.P999us, want.P999us) {
		t.Errorf("compute:\n got %+v\nwant %+v", got, want)
	}

	d := compute("direct", "http-max", false, ls, 0, before, after, 0)
	if d.CPUPerReqUs != 0 || d.RSSLoadMiB != 0 || d.ProxyCPUPct != 0 {
		t.Errorf("direct run has proxy figures: %+v", d)
	}
}

func TestWriteReport(t *testing.T) {
	rows := []runResult{
		{Config: "direct", Scenario: "http-max", QPS: 30000, P50us: 400, P99us: 2000, P999us: 3000},
		{Config: "linkerd-go", Scenario: "http-max", Proxied: true, QPS: 20000, P50us: 700, P99us: 2500, P999us: 4000, CPUPerReqUs: 45.25, RSSIdleMiB: 9, RSSLoadMiB: 10.5},
	}
	rs := []ratio{{Scenario: "http-max", Ours: "linkerd-go", Baseline: "nginx", QPS: 1, AddedP50: math.NaN(), AddedP99: 1.5, CPUPerReq: 0.75, RSSLoad: 0.5}}
	var buf bytes.Buffer
	ovs := []overhead{{Scenario: "http-max", Variant: "linkerd-go-lb3-mtls", Base: "linkerd-go-lb1-mtls", What: "balancing", CPUPerReqUs: 1.25, P50us: -3, P99us: 40, QPS: 0.98}}
	if err := writeReport(&buf, "smoke", 2*time.Second, 1, rows, rs, ovs); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"smoke run: 2s", "30000", "45.2", "9.0→10.5", "linkerd-go / nginx", "n/a", "1.50×", "0.75×",
		"linkerd-go-lb3-mtls − linkerd-go-lb1-mtls", "+1.2", "-3", "+40", "0.98×", ": balancing"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestOverheads(t *testing.T) {
	rows := []runResult{
		{Config: "a", Scenario: "s1", QPS: 1000, P50us: 300, P99us: 900, CPUPerReqUs: 100},
		{Config: "b", Scenario: "s1", QPS: 1000, P50us: 280, P99us: 1000, CPUPerReqUs: 110},
		{Config: "a", Scenario: "s2", QPS: 4000, P50us: 300, P99us: 900, CPUPerReqUs: 60},
		// b has no s2 row: no overhead for s2.
	}
	got := overheads(rows, []string{"s1", "s2"}, []variantPair{{variant: "b", base: "a", what: "feature"}, {variant: "c", base: "a"}})
	want := []overhead{{Scenario: "s1", Variant: "b", Base: "a", What: "feature", CPUPerReqUs: 10, P50us: -20, P99us: 100, QPS: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("overheads = %+v\nwant %+v", got, want)
	}
}
