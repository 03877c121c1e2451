package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// runResult is one measured run, or the medians of several (Rep 0).
type runResult struct {
	Config   string `json:"config"`
	Scenario string `json:"scenario"`
	// Rep is the repetition, from 1; 0 marks medians over Reps runs.
	Rep  int `json:"rep"`
	Reps int `json:"reps,omitempty"`
	// Proxied is false for the direct connection, which has no proxy
	// processes to measure.
	Proxied bool `json:"proxied"`

	QPS      float64 `json:"qps"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	P999us   float64 `json:"p99_9_us"`

	// CPUPerReqUs is the proxies' user+system time per request.
	CPUPerReqUs float64 `json:"proxy_cpu_us_per_req"`
	// ProxyCPUPct is the proxies' CPU time over wall time (100 = one core).
	ProxyCPUPct float64 `json:"proxy_cpu_pct"`
	// LoadGenCPUPct is the same for fortio client and server together.
	LoadGenCPUPct float64 `json:"loadgen_cpu_pct"`
	// ForeignCPUPct is CPU time used by everything else on the machine, in
	// percent of one core; StealPct is time taken by the hypervisor.
	ForeignCPUPct float64 `json:"foreign_cpu_pct"`
	StealPct      float64 `json:"steal_pct"`

	// RSS of all proxy processes before any load in this repetition and
	// right after this run.
	RSSIdleMiB float64 `json:"rss_idle_mib"`
	RSSLoadMiB float64 `json:"rss_load_mib"`
}

// key identifies a (config, scenario) cell.
type key struct{ Config, Scenario string }

// median returns the median of v (the mean of the middle two for an even
// count), or NaN for an empty slice.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// summarize returns one row per (config, scenario) in the given orders, each
// field the median of that cell's runs; cells without runs are left out.
// Counts (requests, errors) are summed, not medians, so no error hides.
func summarize(runs []runResult, configs, scens []string) []runResult {
	cells := make(map[key][]runResult)
	for _, r := range runs {
		k := key{r.Config, r.Scenario}
		cells[k] = append(cells[k], r)
	}
	var out []runResult
	for _, c := range configs {
		for _, s := range scens {
			rs := cells[key{c, s}]
			if len(rs) == 0 {
				continue
			}
			m := func(f func(runResult) float64) float64 {
				v := make([]float64, len(rs))
				for i, r := range rs {
					v[i] = f(r)
				}
				return median(v)
			}
			row := runResult{
				Config: c, Scenario: s, Reps: len(rs), Proxied: rs[0].Proxied,
				QPS:           m(func(r runResult) float64 { return r.QPS }),
				P50us:         m(func(r runResult) float64 { return r.P50us }),
				P99us:         m(func(r runResult) float64 { return r.P99us }),
				P999us:        m(func(r runResult) float64 { return r.P999us }),
				CPUPerReqUs:   m(func(r runResult) float64 { return r.CPUPerReqUs }),
				ProxyCPUPct:   m(func(r runResult) float64 { return r.ProxyCPUPct }),
				LoadGenCPUPct: m(func(r runResult) float64 { return r.LoadGenCPUPct }),
				ForeignCPUPct: m(func(r runResult) float64 { return r.ForeignCPUPct }),
				StealPct:      m(func(r runResult) float64 { return r.StealPct }),
				RSSIdleMiB:    m(func(r runResult) float64 { return r.RSSIdleMiB }),
				RSSLoadMiB:    m(func(r runResult) float64 { return r.RSSLoadMiB }),
			}
			for _, r := range rs {
				row.Requests += r.Requests
				row.Errors += r.Errors
			}
			out = append(out, row)
		}
	}
	return out
}

// ratio compares our pair with a baseline pair on one scenario. Every
// field is ours divided by theirs; latency ratios compare the latency each
// pair adds over the direct connection. NaN means not comparable (for
// example a baseline that added no latency).
type ratio struct {
	Scenario  string  `json:"scenario"`
	Ours      string  `json:"ours"`
	Baseline  string  `json:"baseline"`
	QPS       float64 `json:"qps"`
	AddedP50  float64 `json:"added_p50"`
	AddedP99  float64 `json:"added_p99"`
	CPUPerReq float64 `json:"cpu_per_req"`
	RSSLoad   float64 `json:"rss_load"`
}

// MarshalJSON writes NaN ratios as null.
func (r ratio) MarshalJSON() ([]byte, error) {
	f := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		Scenario  string   `json:"scenario"`
		Ours      string   `json:"ours"`
		Baseline  string   `json:"baseline"`
		QPS       *float64 `json:"qps"`
		AddedP50  *float64 `json:"added_p50"`
		AddedP99  *float64 `json:"added_p99"`
		CPUPerReq *float64 `json:"cpu_per_req"`
		RSSLoad   *float64 `json:"rss_load"`
	}{r.Scenario, r.Ours, r.Baseline, f(r.QPS), f(r.AddedP50), f(r.AddedP99), f(r.CPUPerReq), f(r.RSSLoad)})
}

// div returns a/b, or NaN when b is not positive.
func div(a, b float64) float64 {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// ratios compares ours with each baseline on every scenario where both (and
// direct, for latency) have a row.
func ratios(rows []runResult, ours, direct string, baselines, scens []string) []ratio {
	byKey := make(map[key]runResult, len(rows))
	for _, r := range rows {
		byKey[key{r.Config, r.Scenario}] = r
	}
	var out []ratio
	for _, s := range scens {
		o, ok := byKey[key{ours, s}]
		if !ok {
			continue
		}
		d, hasDirect := byKey[key{direct, s}]
		for _, b := range baselines {
			base, ok := byKey[key{b, s}]
			if !ok {
				continue
			}
			r := ratio{
				Scenario: s, Ours: ours, Baseline: b,
				QPS:       div(o.QPS, base.QPS),
				CPUPerReq: div(o.CPUPerReqUs, base.CPUPerReqUs),
				RSSLoad:   div(o.RSSLoadMiB, base.RSSLoadMiB),
				AddedP50:  math.NaN(),
				AddedP99:  math.NaN(),
			}
			if hasDirect {
				r.AddedP50 = div(o.P50us-d.P50us, base.P50us-d.P50us)
				r.AddedP99 = div(o.P99us-d.P99us, base.P99us-d.P99us)
			}
			out = append(out, r)
		}
	}
	return out
}

// writeTable prints rows as an aligned table.
func writeTable(w io.Writer, rows []runResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\tscenario\tqps\tp50 µs\tp99 µs\tp99.9 µs\terrors\tCPU µs/req\tproxy CPU%\tfortio CPU%\tother CPU%\tRSS idle→load MiB\t")
	for _, r := range rows {
		cpu, pct, rss := "-", "-", "-"
		if r.Proxied {
			cpu = fmt.Sprintf("%.1f", r.CPUPerReqUs)
			pct = fmt.Sprintf("%.0f", r.ProxyCPUPct)
			rss = fmt.Sprintf("%.1f→%.1f", r.RSSIdleMiB, r.RSSLoadMiB)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%s\t%s\t%.0f\t%.0f\t%s\t\n",
			r.Config, r.Scenario, r.QPS, r.P50us, r.P99us, r.P999us, r.Errors,
			cpu, pct, r.LoadGenCPUPct, r.ForeignCPUPct, rss)
	}
	return tw.Flush()
}

// writeRatios prints the comparisons as an aligned table.
func writeRatios(w io.Writer, rs []ratio) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tours / baseline\tqps\tadded p50\tadded p99\tCPU/req\tRSS\t")
	x := func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "n/a"
		}
		return fmt.Sprintf("%.2f×", v)
	}
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s / %s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Scenario, r.Ours, r.Baseline, x(r.QPS), x(r.AddedP50), x(r.AddedP99), x(r.CPUPerReq), x(r.RSSLoad))
	}
	return tw.Flush()
}

// variantPair is a variant of a contender and the contender it differs
// from by one feature, measured against each other in the same run.
type variantPair struct{ variant, base, what string }

// overhead is what a variant adds per request to its base, on one scenario.
type overhead struct {
	Scenario string `json:"scenario"`
	Variant  string `json:"variant"`
	Base     string `json:"base"`
	What     string `json:"what"`
	// CPUPerReqUs, P50us and P99us are the variant's figure minus the base's.
	CPUPerReqUs float64 `json:"proxy_cpu_us_per_req"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
	// QPS is the variant's over the base's.
	QPS float64 `json:"qps_ratio"`
}

// overheads compares each variant with its base on every scenario where
// both have a row.
func overheads(rows []runResult, scens []string, pairs []variantPair) []overhead {
	byKey := make(map[key]runResult, len(rows))
	for _, r := range rows {
		byKey[key{r.Config, r.Scenario}] = r
	}
	var out []overhead
	for _, vp := range pairs {
		for _, s := range scens {
			v, ok1 := byKey[key{vp.variant, s}]
			b, ok2 := byKey[key{vp.base, s}]
			if !ok1 || !ok2 {
				continue
			}
			out = append(out, overhead{
				Scenario: s, Variant: vp.variant, Base: vp.base, What: vp.what,
				CPUPerReqUs: v.CPUPerReqUs - b.CPUPerReqUs,
				P50us:       v.P50us - b.P50us,
				P99us:       v.P99us - b.P99us,
				QPS:         div(v.QPS, b.QPS),
			})
		}
	}
	return out
}

// writeOverheads prints the variants' overheads as an aligned table.
func writeOverheads(w io.Writer, os []overhead) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario	variant − base	Δ CPU µs/req	Δ p50 µs	Δ p99 µs	qps	")
	for _, o := range os {
		fmt.Fprintf(tw, "%s	%s − %s	%+.1f	%+.0f	%+.0f	%.2f×	\n", o.Scenario, o.Variant, o.Base, o.CPUPerReqUs, o.P50us, o.P99us, o.QPS)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, o := range os {
		if !seen[o.Variant] {
			seen[o.Variant] = true
			fmt.Fprintf(w, "%s − %s: %s\n", o.Variant, o.Base, o.What)
		}
	}
	return nil
}

// report is the JSON document written by -out.
type report struct {
	Mode      string      `json:"mode"`
	Duration  string      `json:"duration"`
	Warmup    string      `json:"warmup"`
	Reps      int         `json:"reps"`
	Medians   []runResult `json:"medians"`
	Ratios    []ratio     `json:"ratios"`
	Overheads []overhead  `json:"overheads,omitempty"`
	Runs      []runResult `json:"runs"`
}

// writeReport writes the medians table, the ratios, the variants'
// overheads and a legend.
func writeReport(w io.Writer, mode string, duration time.Duration, reps int, rows []runResult, rs []ratio, os []overhead) error {
	fmt.Fprintf(w, "%s run: %v per run, median of %d repetition(s)\n\n", mode, duration, reps)
	if err := writeTable(w, rows); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(rs) > 0 {
		if err := writeRatios(w, rs); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if len(os) > 0 {
		if err := writeOverheads(w, os); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, strings.Join([]string{
		"CPU µs/req and RSS cover all proxy processes of a pair (100% CPU = one core).",
		"Ratios are ours divided by the baseline; \"added\" latency is over the direct connection.",
		"Read max qps as a proxy figure only when proxy CPU is near 100% and fortio CPU is not.",
	}, "\n"))
	return nil
}
