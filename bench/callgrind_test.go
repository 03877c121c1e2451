package bench

import (
	"bufio"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/linkerd-go/linkerd/internal/testnet"
)

var (
	flagCallgrind         = flag.Bool("callgrind", false, "TestCallgrind: count user-space instructions per request under valgrind's callgrind (slow; not part of make test)")
	flagCallgrindRequests = flag.Int("callgrind-requests", 2000, "sequential requests counted per scenario by TestCallgrind")
)

// callgrindDir, when set, makes startPinned run the proxies under callgrind,
// writing their profiles there.
var callgrindDir string

// underCallgrind wraps a pinned command line so that callgrind runs it.
func underCallgrind(path string, args []string) (string, []string) {
	vg := []string{"--tool=callgrind", "--callgrind-out-file=" + filepath.Join(callgrindDir, "callgrind.%p"), path}
	return "valgrind", append(vg, args...)
}

// TestCallgrind counts the user-space instructions each mTLS pair (ours,
// nginx's, haproxy's) executes per request, for sequential keep-alive
// HTTP/1.1 and gRPC requests after a warm-up: a figure that does not move
// with what else the machine does (wall-clock figures do here). Kernel
// work (about half of a proxy's CPU) is not counted.
//
//	go test ./bench -run TestCallgrind -v -timeout 30m -args -callgrind
//
// -configs picks pairs, and adds the tap variants when it names them:
//
//	go test ./bench -run TestCallgrind -v -timeout 60m -args -callgrind -configs linkerd-go-mtls,linkerd-go-tapon-mtls,linkerd-go-tapped-mtls
func TestCallgrind(t *testing.T) {
	if !*flagCallgrind {
		t.Skip("the callgrind benchmark runs on request: go test ./bench -run TestCallgrind -args -callgrind")
	}
	testnet.Require(t, "ip", "nsenter", "iptables", "taskset", "nginx", "haproxy", "valgrind")
	fortio := findFortio(t)
	bins := testnet.BuildBinaries(t, "./cmd/linkerd-init", "./cmd/linkerd-controller", "./cmd/linkerd-proxy")
	if *flagProxyBin != "" {
		bins["linkerd-proxy"] = *flagProxyBin
	}
	dir, err := os.MkdirTemp("", "bench-callgrind-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil { // the proxies' user writes its profile
		t.Fatal(err)
	}
	callgrindDir = dir
	t.Cleanup(func() { callgrindDir = "" })

	ours := linkerdPair{proxyBin: bins["linkerd-proxy"], initBin: bins["linkerd-init"]}
	plane := &sharedPlane{proxies: ours, controllerBin: bins["linkerd-controller"]}
	var cs []contender
	configs := splitList(*flagConfigs)
	for _, c := range []contender{&linkerdMTLS{linkerdPair: ours, plane: plane}, nginxMTLSPair(), haproxyMTLSPair()} {
		if selected(configs, c.Name()) {
			cs = append(cs, c)
		}
	}
	// The tap variants, when -configs names them: tap's cost in the
	// proxies' own instructions (the tap client's are not counted).
	for _, c := range []contender{
		&linkerdMTLS{linkerdPair: ours, plane: plane, name: oursTapOnName, tap: tapEnabled},
		&linkerdMTLS{linkerdPair: ours, plane: plane, name: oursTapAttachName, tap: tapAttached},
		&linkerdMTLS{linkerdPair: ours, plane: plane, name: oursAuthzName, authz: true},
		&linkerdBalanced{linkerdPair: ours, plane: plane, fortio: fortio, backends: 1},
		&linkerdBalanced{linkerdPair: ours, plane: plane, fortio: fortio, backends: 1, routes: true},
	} {
		if len(configs) > 0 && selected(configs, c.Name()) {
			cs = append(cs, c)
		}
	}
	h := &harness{opts: options{Reps: 1}, fortio: fortio, jsonDir: t.TempDir()}
	network := testnet.New(t)
	n := *flagCallgrindRequests
	const warmup = 200
	results := map[string]map[string]float64{}
	for _, c := range cs {
		in := h.setup(t, network, c)
		results[c.Name()] = map[string]float64{}
		for _, s := range []scenario{{Name: "http"}, {Name: "grpc", GRPC: true}} {
			// Two runs, each from a fresh start to a clean exit (callgrind
			// writes its totals then): warmup requests, and warmup+n. Their
			// difference is n requests' worth, start-up and exit cancelled.
			var totals [2]float64
			for i, requests := range []int{warmup, warmup + n} {
				var pids []int
				t.Run(fmt.Sprintf("%s/%s/%d", c.Name(), s.Name, requests), func(t *testing.T) {
					st, err := h.start(t, in)
					if err != nil {
						t.Fatalf("start under callgrind: %v", err)
					}
					pids = st.pids
					sequential(t, h, in.pods.client, st.endpoints, s, requests)
					switch c.(type) {
					case *linkerdMTLS, *linkerdBalanced:
						for _, pod := range []*testnet.Pod{in.pods.client, in.pods.server} {
							shutdown(t, pod)
						}
						waitExit(t, pids)
					}
				})
				// The subtest's cleanup stopped the proxies: their totals are written.
				for _, pid := range pids {
					ir, err := dumpTotal(filepath.Join(dir, fmt.Sprintf("callgrind.%d", pid)))
					if err != nil {
						t.Fatal(err)
					}
					totals[i] += ir
				}
			}
			per := (totals[1] - totals[0]) / float64(n)
			results[c.Name()][s.Name] = per
			t.Logf("%s/%s: %.0f instructions per request (%d requests after %d)", c.Name(), s.Name, per, n, warmup)
		}
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pair\tHTTP/1.1 instr/req\tgRPC instr/req\t")
	names := make([]string, 0, len(results))
	for name := range results {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t\n", name, results[name]["http"], results[name]["grpc"])
	}
	_ = tw.Flush()
	t.Logf("user-space instructions per request, callgrind, %d sequential requests after %d:\n%s", n, warmup, b.String())
}

// sequential sends requests one after the other on one connection.
func sequential(t *testing.T, h *harness, client *testnet.Pod, e endpoints, s scenario, requests int) {
	t.Helper()
	args := []string{"load", "-quiet", "-qps", "0", "-c", "1", "-n", strconv.Itoa(requests),
		"-t", (time.Duration(requests) * 100 * time.Millisecond).String()}
	if s.GRPC {
		args = append(args, "-grpc", "-ping", e.GRPC)
	} else {
		args = append(args, "-payload-size", strconv.Itoa(payloadSize), e.HTTP)
	}
	if _, err := h.load(client, args); err != nil {
		t.Fatalf("%s: %v", s.Name, err)
	}
}

// dumpTotal returns the instruction count of a callgrind profile.
func dumpTotal(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("callgrind profile: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		for _, p := range []string{"summary:", "totals:"} {
			if v, ok := strings.CutPrefix(sc.Text(), p); ok {
				if fields := strings.Fields(v); len(fields) > 0 {
					return strconv.ParseFloat(fields[0], 64)
				}
			}
		}
	}
	return 0, fmt.Errorf("no total in %s", path)
}

// shutdown asks the proxy in pod to exit (POST /shutdown on its admin port).
func shutdown(t *testing.T, pod *testnet.Pod) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: pod.DialContext}, Timeout: 30 * time.Second}
	resp, err := c.Post("http://127.0.0.1:4191/shutdown", "", nil)
	if err != nil {
		t.Fatalf("shutdown %s's proxy: %v", pod.Name, err)
	}
	resp.Body.Close()
}

// waitExit waits until the processes are gone (their profiles written).
func waitExit(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for _, pid := range pids {
		for {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pid %d did not exit", pid)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
