package bench

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
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
func TestCallgrind(t *testing.T) {
	if !*flagCallgrind {
		t.Skip("the callgrind benchmark runs on request: go test ./bench -run TestCallgrind -args -callgrind")
	}
	testnet.Require(t, "ip", "nsenter", "iptables", "taskset", "nginx", "haproxy", "valgrind", "callgrind_control")
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
	cs := []contender{&linkerdMTLS{linkerdPair: ours, plane: plane}, nginxMTLSPair(), haproxyMTLSPair()}
	h := &harness{opts: options{Reps: 1}, fortio: fortio, jsonDir: t.TempDir()}
	network := testnet.New(t)
	n := *flagCallgrindRequests
	results := map[string]map[string]float64{}
	for _, c := range cs {
		in := h.setup(t, network, c)
		st, err := h.start(t, in)
		if err != nil {
			t.Fatalf("%s: start under callgrind: %v", c.Name(), err)
		}
		results[c.Name()] = map[string]float64{}
		for _, s := range []scenario{{Name: "http", QPS: 0}, {Name: "grpc", GRPC: true, QPS: 0}} {
			seq := func(requests int) {
				args := []string{"load", "-quiet", "-qps", "0", "-c", "1", "-n", strconv.Itoa(requests)}
				if s.GRPC {
					args = append(args, "-grpc", "-ping", st.endpoints.GRPC)
				} else {
					args = append(args, "-payload-size", strconv.Itoa(payloadSize), st.endpoints.HTTP)
				}
				args = append(args[:1], append([]string{"-t", (time.Duration(requests) * 50 * time.Millisecond).String()}, args[1:]...)...)
				if _, err := h.load(in.pods.client, args); err != nil {
					t.Fatalf("%s/%s: %v", c.Name(), s.Name, err)
				}
			}
			seq(200) // warm-up: connections, TLS sessions, pools, JIT-free but cache-filling
			for _, pid := range st.pids {
				callgrindControl(t, "-z", pid)
			}
			seq(n)
			var total float64
			for _, pid := range st.pids {
				callgrindControl(t, "-d", pid)
				ir, err := lastDumpTotal(dir, pid)
				if err != nil {
					t.Fatalf("%s/%s: %v", c.Name(), s.Name, err)
				}
				total += ir
			}
			results[c.Name()][s.Name] = total / float64(n)
			t.Logf("%s/%s: %.0f instructions per request (%d requests, %d processes)", c.Name(), s.Name, total/float64(n), n, len(st.pids))
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
	t.Logf("user-space instructions per request, callgrind, %d sequential requests after 200:\n%s", n, b.String())
}

// callgrindControl runs callgrind_control with op on pid.
func callgrindControl(t *testing.T, op string, pid int) {
	t.Helper()
	if out, err := exec.Command("callgrind_control", op, strconv.Itoa(pid)).CombinedOutput(); err != nil {
		t.Fatalf("callgrind_control %s %d: %v\n%s", op, pid, err, out)
	}
}

// lastDumpTotal returns the instruction count of pid's latest callgrind
// dump in dir.
func lastDumpTotal(dir string, pid int) (float64, error) {
	matches, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("callgrind.%d.*", pid)))
	if err != nil || len(matches) == 0 {
		return 0, fmt.Errorf("no callgrind dump for pid %d in %s", pid, dir)
	}
	sort.Slice(matches, func(i, j int) bool { return dumpIndex(matches[i]) < dumpIndex(matches[j]) })
	f, err := os.Open(matches[len(matches)-1])
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range []string{"summary:", "totals:"} {
			if v, ok := strings.CutPrefix(line, p); ok {
				fields := strings.Fields(v)
				if len(fields) > 0 {
					return strconv.ParseFloat(fields[0], 64)
				}
			}
		}
	}
	return 0, fmt.Errorf("no total in %s", matches[len(matches)-1])
}

func dumpIndex(path string) int {
	i, _ := strconv.Atoi(path[strings.LastIndexByte(path, '.')+1:])
	return i
}
