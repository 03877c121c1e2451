package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testnet"
)

const (
	// quietBusy is the machine-wide CPU use, in percent of one core, below
	// which the machine counts as quiet enough to start a run.
	quietBusy = 5.0
	// quietSample is the window over which CPU use is sampled while waiting.
	quietSample = 500 * time.Millisecond
	// fortioSlack bounds a fortio run beyond its requested duration.
	fortioSlack = time.Minute
)

// harness runs the measurements.
type harness struct {
	opts    options
	fortio  string
	jsonDir string // where fortio writes its results
}

// instance is a contender set up in its pods.
type instance struct {
	c      contender
	pods   pods
	server *testnet.Proc // the fortio server
}

// started is an instance's state during one repetition.
type started struct {
	endpoints endpoints
	pids      []int // proxy processes
	idleRSS   int64 // of the proxies, before any load
}

// run sets every contender up in its own pods, then runs the repetitions
// interleaved: within each repetition the proxies are started fresh and
// every scenario runs on every contender in turn, the contenders' order
// rotating with the repetition.
func (h *harness) run(t *testing.T, n *testnet.Network, cs []contender, scens []scenario) []runResult {
	t.Helper()
	insts := make([]*instance, len(cs))
	for i, c := range cs {
		insts[i] = h.setup(t, n, c)
	}
	var runs []runResult
	for rep := 1; rep <= h.opts.Reps; rep++ {
		t.Run(fmt.Sprintf("rep-%d", rep), func(t *testing.T) {
			var order []*instance
			states := make(map[*instance]*started, len(insts))
			for _, in := range rotate(insts, rep-1) {
				st, err := h.start(t, in)
				if err != nil {
					t.Errorf("%s: start: %v", in.c.Name(), err)
					continue
				}
				order = append(order, in)
				states[in] = st
			}
			for _, s := range scens {
				for _, in := range order {
					r, err := h.measure(t, in, states[in], s)
					if err != nil {
						t.Errorf("%s/%s: %v", in.c.Name(), s.Name, err)
						continue
					}
					r.Rep = rep
					t.Logf("%s/%s rep %d: %.0f qps, p50 %.0f µs, p99 %.0f µs, %d errors, %.1f µs CPU/req",
						r.Config, r.Scenario, rep, r.QPS, r.P50us, r.P99us, r.Errors, r.CPUPerReqUs)
					runs = append(runs, r)
				}
			}
		})
	}
	return runs
}

// rotate returns s rotated left by k.
func rotate[T any](s []T, k int) []T {
	if len(s) == 0 {
		return nil
	}
	k %= len(s)
	return append(append([]T(nil), s[k:]...), s[:k]...)
}

// setup creates the contender's pods, starts the fortio server and
// prepares the contender.
func (h *harness) setup(t *testing.T, n *testnet.Network, c contender) *instance {
	t.Helper()
	p := pods{client: n.AddPod(c.Name() + "-client"), server: n.AddPod(c.Name() + "-server")}
	server := startPinned(t, p.server, loadCPU, testnet.ProcSpec{
		Name: "fortio-server-" + c.Name(),
		Path: h.fortio,
		Args: []string{"server",
			"-http-port", fmt.Sprint(httpPort), "-grpc-port", fmt.Sprint(grpcPort),
			"-redirect-port", "disabled", "-tcp-port", "disabled", "-udp-port", "disabled",
			"-loglevel", "warning"},
		Dir: t.TempDir(), // fortio's data directory
	})
	// Before Prepare, so no iptables rule is involved yet.
	for _, port := range []uint16{httpPort, grpcPort} {
		if err := waitTCP(p.server, server, p.server.Addr(port)); err != nil {
			t.Fatalf("fortio server: %v", err)
		}
	}
	c.Prepare(t, p)
	return &instance{c: c, pods: p, server: server}
}

// idleSettle is how long proxies sit idle before their idle memory is read.
const idleSettle = 4 * time.Second

// start starts the instance's proxies for one repetition and records their
// idle memory.
func (h *harness) start(t *testing.T, in *instance) (*started, error) {
	t.Helper()
	e, pids, err := in.c.Start(t, in.pods)
	if err != nil {
		return nil, err
	}
	st := &started{endpoints: e, pids: pids}
	if len(pids) > 0 {
		if h.opts.Duration >= 5*time.Second {
			// Idle means settled: start-up transients over (our proxy gives
			// back its start-up pages 3 s after it is ready). The same wait
			// for every contender; the short smoke run skips it.
			time.Sleep(idleSettle)
		}
		u, err := sampleUsage(pids)
		if err != nil {
			return nil, fmt.Errorf("idle usage: %w", err)
		}
		st.idleRSS = u.RSS
	}
	return st, nil
}

// snapshot is the resource use at one instant.
type snapshot struct {
	at      time.Time
	machine cpuTimes
	proxies usage
	server  usage
}

func (h *harness) snapshot(in *instance, st *started) (snapshot, error) {
	s := snapshot{at: time.Now()}
	var err error
	if s.machine, err = readCPUTimes(); err != nil {
		return s, err
	}
	if len(st.pids) > 0 {
		if s.proxies, err = sampleUsage(st.pids); err != nil {
			return s, fmt.Errorf("proxies: %w", err)
		}
	}
	if s.server, err = sampleUsage([]int{in.server.Pid()}); err != nil {
		return s, fmt.Errorf("fortio server: %w", err)
	}
	return s, nil
}

// measure runs one scenario against one contender: an optional wait for a
// quiet machine, a warm-up, then the measured load.
func (h *harness) measure(t *testing.T, in *instance, st *started, s scenario) (runResult, error) {
	t.Helper()
	if h.opts.QuietWait > 0 {
		if busy, err := waitQuiet(h.opts.QuietWait); err != nil {
			return runResult{}, err
		} else if busy >= quietBusy {
			t.Logf("%s/%s: machine still busy (%.0f%% of a core) after %v; measuring anyway", in.c.Name(), s.Name, busy, h.opts.QuietWait)
		}
	}
	if h.opts.Warmup > 0 {
		if _, err := h.load(in.pods.client, s.loadArgs(st.endpoints, h.opts.Warmup, "")); err != nil {
			return runResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	jsonPath := filepath.Join(h.jsonDir, in.c.Name()+"-"+s.Name+".json")
	before, err := h.snapshot(in, st)
	if err != nil {
		return runResult{}, err
	}
	clientCPU, err := h.load(in.pods.client, s.loadArgs(st.endpoints, h.opts.Duration, jsonPath))
	if err != nil {
		return runResult{}, err
	}
	after, err := h.snapshot(in, st)
	if err != nil {
		return runResult{}, err
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return runResult{}, fmt.Errorf("read fortio results: %w", err)
	}
	ls, err := parseFortio(b, s.okCode())
	if err != nil {
		return runResult{}, err
	}
	return compute(in.c.Name(), s.Name, len(st.pids) > 0, ls, st.idleRSS, before, after, clientCPU), nil
}

// compute derives a run's figures from fortio's statistics and the
// snapshots around the run.
func compute(config, scen string, proxied bool, ls loadStats, idleRSS int64, before, after snapshot, clientCPU time.Duration) runResult {
	wall := after.at.Sub(before.at)
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / wall.Seconds() }
	proxyCPU := after.proxies.CPU - before.proxies.CPU
	loadCPU := clientCPU + after.server.CPU - before.server.CPU
	m := after.machine.sub(before.machine)
	foreign := max(ticksToDuration(m.Busy)-proxyCPU-loadCPU, 0)
	const mib = 1 << 20
	r := runResult{
		Config: config, Scenario: scen, Proxied: proxied,
		QPS: ls.QPS, Requests: ls.Requests, Errors: ls.Errors,
		P50us:         float64(ls.P50) / float64(time.Microsecond),
		P99us:         float64(ls.P99) / float64(time.Microsecond),
		P999us:        float64(ls.P999) / float64(time.Microsecond),
		LoadGenCPUPct: pct(loadCPU),
		ForeignCPUPct: pct(foreign),
		StealPct:      pct(ticksToDuration(m.Steal)),
	}
	if proxied {
		r.CPUPerReqUs = float64(proxyCPU) / float64(time.Microsecond) / float64(ls.Requests)
		r.ProxyCPUPct = pct(proxyCPU)
		r.RSSIdleMiB = float64(idleRSS) / mib
		r.RSSLoadMiB = float64(after.proxies.RSS) / mib
	}
	return r
}

// load runs `fortio load` in the client pod, pinned to the load generator's
// CPU, and returns the CPU time it used.
func (h *harness) load(client *testnet.Pod, args []string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout(args))
	defer cancel()
	path, pargs := pinned(loadCPU, h.fortio, args...)
	cmd := client.Command(ctx, path, pargs...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("fortio %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	ps := cmd.ProcessState
	return ps.UserTime() + ps.SystemTime(), nil
}

// loadTimeout is the time allowed for a fortio invocation with args: its
// -t duration plus slack.
func loadTimeout(args []string) time.Duration {
	for i, a := range args[:max(len(args)-1, 0)] {
		if a == "-t" {
			if d, err := time.ParseDuration(args[i+1]); err == nil {
				return d + fortioSlack
			}
		}
	}
	return fortioSlack
}

// waitQuiet waits, at most for limit, until the machine's CPU use over a
// short window drops below quietBusy, and returns the last use measured in
// percent of one core.
func waitQuiet(limit time.Duration) (float64, error) {
	deadline := time.Now().Add(limit)
	for {
		a, err := readCPUTimes()
		if err != nil {
			return 0, err
		}
		time.Sleep(quietSample)
		b, err := readCPUTimes()
		if err != nil {
			return 0, err
		}
		busy := 100 * ticksToDuration(b.sub(a).Busy).Seconds() / quietSample.Seconds()
		if busy < quietBusy || time.Now().After(deadline) {
			return busy, nil
		}
	}
}
