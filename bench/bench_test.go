package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/internal/testnet"
)

var (
	flagFull      = flag.Bool("full", false, "full run: 3 repetitions of 30 s after a 3 s warm-up (also BENCH_FULL=1)")
	flagDuration  = flag.Duration("duration", 0, "measured time of each run (default 2s, or 30s with -full)")
	flagWarmup    = flag.Duration("warmup", 0, "unmeasured load before each run (default 300ms, or 3s with -full)")
	flagReps      = flag.Int("reps", 0, "interleaved repetitions (default 1, or 3 with -full)")
	flagOut       = flag.String("out", "", "write the results as JSON to this file (a relative path is relative to the bench directory)")
	flagProxyBin  = flag.String("proxy-bin", "", "use this linkerd-proxy binary (readable by uid 2102) instead of building ./cmd/linkerd-proxy, e.g. to compare builds")
	flagConfigs   = flag.String("configs", "", "comma-separated contenders to run (default all: direct,linkerd-go,nginx,haproxy,linkerd-go-mtls,nginx-mtls,haproxy-mtls; only when named: linkerd-go-h1-mtls,linkerd-go-h2x4-mtls,linkerd-go-lb1-mtls,linkerd-go-lb3-mtls,linkerd-go-tapon-mtls,linkerd-go-tapped-mtls)")
	flagScenarios = flag.String("scenarios", "", "comma-separated scenarios to run (default all)")
	flagQuiet     = flag.Duration("quiet-wait", -1, "before each run, wait up to this long for other CPU use to drop below 5% (default 0, or 30s with -full)")
)

// Names of the contenders the ratios compare.
const (
	oursName     = "linkerd-go"
	oursMTLSName = "linkerd-go-mtls"
	directName   = "direct"
	// Variants of ours: HTTP/1.1 between the proxies, and the client's
	// proxy balancing over one or three endpoints found by discovery.
	oursH1MTLSName = "linkerd-go-h1-mtls"
	oursH2x4Name   = "linkerd-go-h2x4-mtls" // up to 4 HTTP/2 connections per peer
	oursLB1Name    = "linkerd-go-lb1-mtls"
	oursLB3Name    = "linkerd-go-lb3-mtls"
	// Tap on (no tap attached), and a tap attached to both proxies.
	oursTapOnName     = "linkerd-go-tapon-mtls"
	oursTapAttachName = "linkerd-go-tapped-mtls"
)

// variantPairs are the variants of our pair measured against each other:
// what a feature costs per request.
var variantPairs = []variantPair{
	{oursMTLSName, oursH1MTLSName, "HTTP/1.1 over one HTTP/2 connection between the proxies, vs pooled HTTP/1.1"},
	{oursH2x4Name, oursMTLSName, "up to 4 HTTP/2 connections per peer, vs 1"},
	{oursLB3Name, oursLB1Name, "balancing over 3 endpoints, vs 1 (both found by the destination service)"},
	{oursTapOnName, oursMTLSName, "tap enabled, no tap attached, vs tap off"},
	{oursTapAttachName, oursMTLSName, "a tap attached to both proxies (every request), vs tap off"},
	{oursAuthzName, oursMTLSName, "a Server and an AuthorizationPolicy in force on the server's proxy, vs the default policy"},
	{oursRoutesName, oursLB1Name, "a ServiceProfile with 10 routes, the matched one retryable, vs none (both found by the destination service)"},
}

// options are the settings of one invocation.
type options struct {
	Full      bool
	Duration  time.Duration
	Warmup    time.Duration
	Reps      int
	QuietWait time.Duration
	Out       string
	Configs   []string // empty means all
	Scenarios []string // empty means all
}

// Mode names the kind of run in the report.
func (o options) Mode() string {
	if o.Full {
		return "full"
	}
	return "smoke"
}

// loadOptions resolves the flags and the environment into options.
func loadOptions() options {
	o := options{Full: *flagFull || os.Getenv("BENCH_FULL") == "1"}
	if o.Full {
		o.Duration, o.Warmup, o.Reps, o.QuietWait = 30*time.Second, 3*time.Second, 3, 30*time.Second
	} else {
		o.Duration, o.Warmup, o.Reps, o.QuietWait = 2*time.Second, 300*time.Millisecond, 1, 0
	}
	if *flagDuration > 0 {
		o.Duration = *flagDuration
	}
	if *flagWarmup > 0 {
		o.Warmup = *flagWarmup
	}
	if *flagReps > 0 {
		o.Reps = *flagReps
	}
	if *flagQuiet >= 0 {
		o.QuietWait = *flagQuiet
	}
	o.Out = *flagOut
	o.Configs = splitList(*flagConfigs)
	o.Scenarios = splitList(*flagScenarios)
	return o
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// selected reports whether name is in list (an empty list selects all).
func selected(list []string, name string) bool {
	return len(list) == 0 || slices.Contains(list, name)
}

// TestCompare runs every contender through every scenario and prints the
// comparison. By default it is a short smoke run that checks the harness
// works; -full (or BENCH_FULL=1) makes it a measurement.
func TestCompare(t *testing.T) {
	opts := loadOptions()
	testnet.Require(t, "ip", "nsenter", "iptables", "taskset", "nginx", "haproxy")
	fortio := findFortio(t)
	if v := fortioVersion(fortio); v != wantFortioVersion {
		t.Logf("bench: %s is fortio %q, not %s: figures may not compare with earlier runs", fortio, v, wantFortioVersion)
	}
	pkgs := []string{"./cmd/linkerd-init", "./cmd/linkerd-controller"}
	if *flagProxyBin == "" {
		pkgs = append(pkgs, "./cmd/linkerd-proxy")
	}
	bins := testnet.BuildBinaries(t, pkgs...)
	if *flagProxyBin != "" {
		bins["linkerd-proxy"] = *flagProxyBin
	}

	ours := linkerdPair{proxyBin: bins["linkerd-proxy"], initBin: bins["linkerd-init"]}
	plane := &sharedPlane{proxies: ours, controllerBin: bins["linkerd-controller"]}
	all := []contender{
		direct{},
		ours,
		nginxPair(),
		haproxyPair(),
		&linkerdMTLS{linkerdPair: ours, plane: plane},
		nginxMTLSPair(),
		haproxyMTLSPair(),
	}
	// Variants of our mTLS pair, run only when -configs names them: what
	// a feature costs per request (see variantPairs).
	optional := []contender{
		&linkerdMTLS{linkerdPair: ours, plane: plane, name: oursH1MTLSName, clientEnv: []string{"LINKERD2_PROXY_OUTBOUND_H2_UPGRADE=false"}},
		&linkerdMTLS{linkerdPair: ours, plane: plane, name: oursH2x4Name, clientEnv: []string{"LINKERD2_PROXY_OUTBOUND_H2_CONNECTIONS=4"}},
		&linkerdMTLS{linkerdPair: ours, plane: plane, name: oursTapOnName, tap: tapEnabled},
		&linkerdMTLS{linkerdPair: ours, plane: plane, name: oursTapAttachName, tap: tapAttached},
		&linkerdMTLS{linkerdPair: ours, plane: plane, name: oursAuthzName, authz: true},
		&linkerdBalanced{linkerdPair: ours, plane: plane, fortio: fortio, backends: 1},
		&linkerdBalanced{linkerdPair: ours, plane: plane, fortio: fortio, backends: 3},
		&linkerdBalanced{linkerdPair: ours, plane: plane, fortio: fortio, backends: 1, routes: true},
	}
	var cs []contender
	for _, c := range all {
		if selected(opts.Configs, c.Name()) {
			cs = append(cs, c)
		}
	}
	for _, c := range optional {
		if len(opts.Configs) > 0 && selected(opts.Configs, c.Name()) {
			cs = append(cs, c)
		}
	}
	var scens []scenario
	for _, s := range scenarios {
		if selected(opts.Scenarios, s.Name) {
			scens = append(scens, s)
		}
	}
	if len(cs) == 0 || len(scens) == 0 {
		t.Fatalf("nothing to run: -configs %q -scenarios %q match no contender or scenario", *flagConfigs, *flagScenarios)
	}

	h := &harness{opts: opts, fortio: fortio, jsonDir: t.TempDir()}
	runs := h.run(t, testnet.New(t), cs, scens)

	configNames := names(cs, contender.Name)
	scenNames := names(scens, func(s scenario) string { return s.Name })
	rows := summarize(runs, configNames, scenNames)
	var rs []ratio
	for _, cmp := range comparisons(configNames) {
		rs = append(rs, ratios(rows, cmp.ours, directName, cmp.baselines, scenNames)...)
	}
	ovs := overheads(rows, scenNames, variantPairs)

	var buf bytes.Buffer
	if err := writeReport(&buf, opts.Mode(), opts.Duration, opts.Reps, rows, rs, ovs); err != nil {
		t.Fatalf("format report: %v", err)
	}
	t.Logf("\n%s", buf.String())
	if opts.Out != "" {
		writeJSON(t, opts.Out, report{
			Mode: opts.Mode(), Duration: opts.Duration.String(), Warmup: opts.Warmup.String(),
			Reps: opts.Reps, Medians: rows, Ratios: rs, Overheads: ovs, Runs: runs,
		})
	}
	checkRuns(t, runs, configNames, scenNames, opts.Reps)
}

// comparison is one of our pairs and the baselines it is compared with.
type comparison struct {
	ours      string
	baselines []string
}

// comparisons pairs like with like among configs: our plain pair with the
// plain baselines, our mTLS pair with the mTLS baselines (named *-mtls).
func comparisons(configs []string) []comparison {
	var out []comparison
	for _, ours := range []string{oursName, oursMTLSName} {
		if !slices.Contains(configs, ours) {
			continue
		}
		cmp := comparison{ours: ours}
		for _, c := range configs {
			if !strings.HasPrefix(c, oursName) && c != directName &&
				strings.HasSuffix(c, "-mtls") == (ours == oursMTLSName) {
				cmp.baselines = append(cmp.baselines, c)
			}
		}
		out = append(out, cmp)
	}
	return out
}

// names maps items to their names.
func names[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out
}

// checkRuns asserts that the harness measured what it should: every cell
// has a result from every repetition, with requests, no errors and sane
// numbers.
func checkRuns(t *testing.T, runs []runResult, configs, scens []string, reps int) {
	t.Helper()
	for _, p := range runProblems(runs, configs, scens, reps) {
		t.Error(p)
	}
}

// runProblems lists what is wrong with a set of runs.
func runProblems(runs []runResult, configs, scens []string, reps int) []string {
	count := make(map[key]int)
	var problems []string
	for _, r := range runs {
		count[key{r.Config, r.Scenario}]++
		id := fmt.Sprintf("%s/%s rep %d", r.Config, r.Scenario, r.Rep)
		switch {
		case r.Requests <= 0 || r.QPS <= 0:
			problems = append(problems, fmt.Sprintf("%s: no requests completed (requests %d, qps %.1f)", id, r.Requests, r.QPS))
		case r.Errors != 0:
			problems = append(problems, fmt.Sprintf("%s: %d of %d requests failed", id, r.Errors, r.Requests))
		}
		if !(r.P50us > 0 && r.P99us >= r.P50us && r.P999us >= r.P99us) {
			problems = append(problems, fmt.Sprintf("%s: implausible latencies p50 %.0f µs, p99 %.0f µs, p99.9 %.0f µs", id, r.P50us, r.P99us, r.P999us))
		}
		if r.Proxied && (r.RSSIdleMiB <= 0 || r.RSSLoadMiB <= 0 || r.CPUPerReqUs < 0) {
			problems = append(problems, fmt.Sprintf("%s: proxy figures not measured (RSS %.1f→%.1f MiB, CPU %.1f µs/req)", id, r.RSSIdleMiB, r.RSSLoadMiB, r.CPUPerReqUs))
		}
	}
	for _, c := range configs {
		for _, s := range scens {
			if n := count[key{c, s}]; n != reps {
				problems = append(problems, fmt.Sprintf("%s/%s: %d of %d repetitions measured", c, s, n, reps))
			}
		}
	}
	return problems
}

// findFortio returns the fortio binary from PATH or GOPATH/bin. Without it
// the test skips, or fails under CI=true.
func findFortio(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("fortio"); err == nil {
		return p
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, gp := range filepath.SplitList(build.Default.GOPATH) {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "fortio")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	testkit.SkipOrFail(t, "bench: fortio not found in PATH or %v; install it with: go install fortio.org/fortio@v1.68.2", dirs)
	return ""
}

// wantFortioVersion is the fortio release the project's figures come from.
const wantFortioVersion = "1.68.2"

// fortioVersion returns what `fortio version` prints, or the error.
func fortioVersion(path string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "version").Output()
	if err != nil {
		return fmt.Sprintf("unknown (%v)", err)
	}
	return strings.TrimSpace(string(out))
}

// writeJSON writes v, indented, to path.
func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("encode results: %v", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatalf("write results: %v", err)
	}
	t.Logf("results written to %s", path)
}
