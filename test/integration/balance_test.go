package integration

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/internal/testnet"
)

// writeBalancedService writes the web Service, with annotations (YAML flow
// mapping entries, "" for none), and its EndpointSlice over pods, in order.
func writeBalancedService(t *testing.T, dir, annotations string, pods [][2]string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata: {name: web, namespace: test, annotations: {%s}}
spec:
  clusterIP: %s
  ports: [{name: http, port: %d, targetPort: %d, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abcde
  namespace: test
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: %d, protocol: TCP}]
endpoints:
`, annotations, webVIP, webPort, webPort, webPort)
	for _, p := range pods {
		fmt.Fprintf(&b, "- addresses: [%s]\n  conditions: {ready: true}\n  targetRef: {kind: Pod, namespace: test, name: %s}\n", p[1], p[0])
	}
	for _, p := range pods {
		b.WriteString("---\n" + webPodYAML(p[0], p[1]))
	}
	tmp := filepath.Join(dir, ".web.yaml")
	write(t, tmp, []byte(b.String()), 0o644)
	if err := os.Rename(tmp, filepath.Join(dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
}

// answer is which pod answered a request, and when it was sent.
type answer struct {
	at  time.Duration // since the start of the run
	pod string
}

// TestBalancingShares runs the control plane and fresh web pods behind one
// Service, and a client sending requests at a steady low rate, one at a
// time, by the Service's name. It measures how the client proxy shares
// them: two equal pods at 10 requests/s over 10 s within ±20% of half
// each (Linkerd's balancer sent everything to one of them); a pod added to
// the Service gets a request at once, then a share that ramps up; with the
// annotation balancer.linkerd-go.io/algorithm: round-robin, the pods
// answer strictly in turn.
func TestBalancingShares(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-controller", "./test/testapp")
	n := testnet.New(t)
	cp := startControlPlane(t, n, bins)

	storeDir := filepath.Join(cp.dir, "store")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	webs := []*testnet.Pod{n.AddPod("web-1"), n.AddPod("web-2"), n.AddPod("web-3")}
	pods := func(k int, annotations string) {
		var ps [][2]string
		for _, w := range webs[:k] {
			ps = append(ps, [2]string{w.Name, w.IP.String()})
		}
		writeBalancedService(t, storeDir, annotations, ps)
	}
	pods(2, "")

	dstPod := n.AddPod("destination")
	dstPod.Start(t, testnet.ProcSpec{Name: "destination", Path: bins["linkerd-controller"], Args: []string{"destination",
		"-addr", ":8086", "-admin-addr", ":9996", "-local-store", storeDir}})
	startMeshedPod(t, dstPod, bins, cp.proxyEnv(t, "linkerd-destination", controlNS, cp.remoteIdentityAddr())...)
	for _, w := range webs {
		startMeshedPod(t, w, bins, cp.proxyEnv(t, "web", "test", cp.remoteIdentityAddr())...)
		w.Start(t, testnet.ProcSpec{Name: "app-" + w.Name, Path: bins["testapp"],
			Args: []string{"--name", w.Name, "--http", fmt.Sprint(webPort), "--grpc", "0", "--tcp", "0", "--banner", "0"}})
	}
	clientPod := n.AddPod("client")
	clientPod.Exec(t, "ip", "route", "add", "10.96.0.0/12", "dev", "eth0") // the VIP has a route, nothing more
	client := startMeshedPod(t, clientPod, bins, append(cp.proxyEnv(t, "client", "test", cp.remoteIdentityAddr()),
		fmt.Sprintf("LINKERD2_PROXY_DESTINATION_SVC_ADDR=%s:8086", dstPod.IP),
		"LINKERD2_PROXY_DESTINATION_SVC_NAME="+identityName("linkerd-destination", controlNS),
		`LINKERD2_PROXY_DESTINATION_CONTEXT={"ns":"test","pod":"client"}`,
	)...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, w := range webs {
		if err := w.WaitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", webPort)); err != nil {
			t.Fatal(err)
		}
	}

	hc := client.httpClient(false)
	defer hc.CloseIdleConnections()
	get := func() (string, error) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s:%d/", webVIP, webPort), nil)
		req.Host = fmt.Sprintf("%s:%d", webFQDN, webPort)
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return strings.TrimPrefix(string(body), "testapp "), nil
	}
	// run sends rps requests per second for d, one at a time, each on its
	// tick; at runs once, at the given time into the run.
	run := func(t *testing.T, d time.Duration, rps int, atTime time.Duration, at func(since time.Duration)) []answer {
		t.Helper()
		var out []answer
		start := time.Now()
		tick := time.NewTicker(time.Second / time.Duration(rps))
		defer tick.Stop()
		for since := time.Duration(0); since < d; since = time.Since(start) {
			if at != nil && since >= atTime {
				at(since)
				at = nil
			}
			pod, err := get()
			if err != nil {
				t.Fatalf("request at %v: %v", since.Round(time.Millisecond), err)
			}
			out = append(out, answer{since, pod})
			<-tick.C
		}
		return out
	}
	count := func(as []answer, from, to time.Duration) (map[string]int, int) {
		m, n := map[string]int{}, 0
		for _, a := range as {
			if a.at >= from && a.at < to {
				m[a.pod]++
				n++
			}
		}
		return m, n
	}

	t.Run("equal pods share at 10 rps", func(t *testing.T) {
		as := run(t, 10*time.Second, 10, 0, nil)
		m, total := count(as, 0, 10*time.Second)
		t.Logf("10 s at 10 rps: %v of %d", m, total)
		for _, p := range []string{"web-1", "web-2"} {
			if share := float64(m[p]) / float64(total); math.Abs(share-0.5) > 0.1 {
				t.Errorf("%s got %.0f%% of the requests, want 50±10%% (%v)", p, 100*share, m)
			}
		}
	})

	t.Run("new pod explored at once, then ramped up", func(t *testing.T) {
		const addAt = 2 * time.Second
		var added time.Duration
		as := run(t, 26*time.Second, 20, addAt, func(since time.Duration) {
			pods(3, "")
			added = since
		})
		first := time.Duration(-1)
		for _, a := range as {
			if a.pod == "web-3" {
				first = a.at
				break
			}
		}
		if first < 0 {
			t.Fatalf("web-3 got no request in the %v after it joined the Service", 26*time.Second-added)
		}
		// The store polls its directory every 300ms, then destination tells
		// the proxy, whose next request goes to the new pod.
		t.Logf("first request to web-3 %v after it joined the Service", (first - added).Round(time.Millisecond))
		if first-added > time.Second {
			t.Errorf("first request to web-3 came %v after it joined the Service, want < 1s", first-added)
		}
		share := func(from, to time.Duration) float64 {
			m, n := count(as, first+from, first+to)
			return float64(m["web-3"]) / float64(n)
		}
		// Over the 10 s slow start its share of picks grows from 5% of a
		// third to a third; the other pods' latency noise moves the shares
		// of three pods over 10 s by about a third either way.
		early, late := share(0, 3*time.Second), share(12*time.Second, 22*time.Second)
		t.Logf("web-3's share: %.2f in its first 3 s, %.2f 12-22 s after", early, late)
		if early == 0 || early > 0.15 {
			t.Errorf("web-3's share in its first 3 s = %.2f, want some, at most 0.15", early)
		}
		if late < 0.2 || late > 0.5 || late < 2*early {
			t.Errorf("web-3's share once ramped up = %.2f, want 0.2..0.5 and at least twice its first share (%.2f)", late, early)
		}
	})

	t.Run("round-robin in turn", func(t *testing.T) {
		pods(3, "balancer.linkerd-go.io/algorithm: round-robin")
		testkit.Eventually(t, 10*time.Second, func() error {
			var seq []string
			for range 12 {
				pod, err := get()
				if err != nil {
					return err
				}
				seq = append(seq, pod)
			}
			for i := 3; i < len(seq); i++ {
				if seq[i] != seq[i-3] {
					return fmt.Errorf("answers not in turn: %v", seq)
				}
			}
			first := slices.Clone(seq[:3])
			slices.Sort(first)
			if !slices.Equal(first, []string{"web-1", "web-2", "web-3"}) {
				return fmt.Errorf("answers not from the three pods in turn: %v", seq)
			}
			return nil
		})
	})
}
