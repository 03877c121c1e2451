package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/internal/testnet"
)

const (
	webVIP  = "10.96.0.10" // the Service's cluster IP: only the proxies know where it goes
	webPort = 8080
	webFQDN = "web.test.svc.cluster.local"
)

// webPodYAML is a meshed pod of the web Deployment, as the injector would
// have labelled it.
func webPodYAML(name string, ip string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %[1]s
  namespace: test
  labels: {app: web, linkerd.io/control-plane-ns: linkerd, pod-template-hash: 5f7b9}
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: web-5f7b9, uid: u-%[1]s, controller: true}
spec:
  serviceAccountName: web
  containers:
  - {name: app, image: testapp}
status:
  phase: Running
  podIP: %[2]s
  podIPs: [{ip: %[2]s}]
`, name, ip)
}

// writeWebService writes the web Service and its EndpointSlice over pods.
func writeWebService(t *testing.T, dir string, pods map[string]string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata: {name: web, namespace: test}
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
`, webVIP, webPort, webPort, webPort)
	for name, ip := range pods {
		fmt.Fprintf(&b, "- addresses: [%s]\n  conditions: {ready: true}\n  targetRef: {kind: Pod, namespace: test, name: %s}\n", ip, name)
	}
	for name, ip := range pods {
		b.WriteString("---\n" + webPodYAML(name, ip))
	}
	tmp := filepath.Join(dir, ".web.yaml")
	write(t, tmp, []byte(b.String()), 0o644)
	if err := os.Rename(tmp, filepath.Join(dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
}

// TestDiscoveryAndBalancing runs the control plane (identity and
// destination, over a local resource store) and three web pods behind one
// Service. The client addresses the Service's virtual IP, which nothing
// routes: its proxy resolves it through destination, balances over the pods
// with mTLS to each, and copes with a slow pod, a dead pod and the control
// plane going away.
func TestDiscoveryAndBalancing(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-controller", "./test/testapp")
	n := testnet.New(t)
	cp := startControlPlane(t, n, bins)

	storeDir := filepath.Join(cp.dir, "store")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	webs := []*testnet.Pod{n.AddPod("web-1"), n.AddPod("web-2"), n.AddPod("web-3")}
	podIPs := map[string]string{}
	for _, w := range webs {
		podIPs[w.Name] = w.IP.String()
	}
	writeWebService(t, storeDir, podIPs)

	dstPod := n.AddPod("destination")
	dstSpec := testnet.ProcSpec{Name: "destination", Path: bins["linkerd-controller"], Args: []string{"destination",
		"-addr", ":8086", "-admin-addr", ":9996", "-local-store", storeDir}}
	dst := dstPod.Start(t, dstSpec)
	startMeshedPod(t, dstPod, bins, cp.proxyEnv(t, "linkerd-destination", controlNS, cp.remoteIdentityAddr())...)

	apps := map[string]*testnet.Proc{}
	for i, w := range webs {
		startMeshedPod(t, w, bins, cp.proxyEnv(t, "web", "test", cp.remoteIdentityAddr())...)
		args := []string{"--name", w.Name, "--http", fmt.Sprint(webPort), "--grpc", "0", "--tcp", "0", "--banner", "0"}
		if i == 2 {
			args = append(args, "--delay", "40ms") // web-3 is slow
		}
		apps[w.Name] = w.Start(t, testnet.ProcSpec{Name: "app-" + w.Name, Path: bins["testapp"], Args: args})
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
	// get sends one request to the Service, by name or by its VIP, and
	// returns which pod answered ("" on failure).
	get := func(byName bool) (string, error) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s:%d/", webVIP, webPort), nil)
		if byName {
			req.Host = fmt.Sprintf("%s:%d", webFQDN, webPort)
		}
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
	// load runs concurrent clients for a while and counts answers per pod
	// and failures, with the time of the last failure.
	type result struct {
		byPod    map[string]int
		failures int
		failedAt []time.Time
		firstErr error
	}
	// byName picks how request i of worker w addresses the Service; each
	// way is its own lookup with its own balancer.
	both := func(i, w int) bool { return (i+w)%2 == 0 }
	nameOnly := func(int, int) bool { return true }
	load := func(d time.Duration, byName func(i, w int) bool, during func()) result {
		var mu sync.Mutex
		r := result{byPod: map[string]int{}}
		stop := time.Now().Add(d)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(stop) && i < 5000; i++ {
					pod, err := get(byName(i, w))
					mu.Lock()
					if err != nil {
						r.failures++
						r.failedAt = append(r.failedAt, time.Now())
						if r.firstErr == nil {
							r.firstErr = err
						}
					} else {
						r.byPod[pod]++
					}
					mu.Unlock()
				}
			}()
		}
		if during != nil {
			during()
		}
		wg.Wait()
		return r
	}

	t.Run("latency-aware balancing", func(t *testing.T) {
		r := load(4*time.Second, both, nil)
		total := r.byPod["web-1"] + r.byPod["web-2"] + r.byPod["web-3"]
		t.Logf("answers: %v, failures %d", r.byPod, r.failures)
		if r.failures != 0 || total == 0 {
			t.Fatalf("%d failures (first: %v), %d answers", r.failures, r.firstErr, total)
		}
		if share := float64(r.byPod["web-3"]) / float64(total); share >= 0.20 {
			t.Errorf("the slow pod got %.0f%% of the requests, want < 20%%", 100*share)
		}
		for _, p := range []string{"web-1", "web-2"} {
			if r.byPod[p] == 0 {
				t.Errorf("%s got no traffic", p)
			}
		}
		// Identity came from discovery: mTLS to the pods with their dst_* labels.
		client.waitMetric(t, "tcp_open_total", map[string]string{"direction": "outbound", "peer": "dst", "tls": "true",
			"server_id": identityName("web", "test"), "dst_service": "web", "dst_namespace": "test",
			"dst_deployment": "web", "dst_pod": "web-1", "dst_serviceaccount": "web"}, 1)
		client.waitMetric(t, "response_total", map[string]string{"direction": "outbound", "authority": fmt.Sprintf("%s:%d", webFQDN, webPort),
			"tls": "true", "dst_service": "web", "classification": "success"}, 1)
	})

	t.Run("canonical name header", func(t *testing.T) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s:%d/headers", webVIP, webPort), nil)
		req.Host = fmt.Sprintf("%s:%d", webFQDN, webPort)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var headers map[string][]string
		if err := json.Unmarshal(body, &headers); err != nil {
			t.Fatalf("/headers: %v: %s", err, body)
		}
		if got := strings.Join(headers["L5d-Dst-Canonical"], ","); got != req.Host {
			t.Fatalf("l5d-dst-canonical %q, want %q", got, req.Host)
		}
	})

	t.Run("dead pod is ejected", func(t *testing.T) {
		var killedAt time.Time
		r := load(5*time.Second, nameOnly, func() {
			time.Sleep(time.Second)
			killedAt = time.Now()
			if err := apps["web-1"].Stop(); err != nil {
				t.Logf("stopping web-1: %v", err)
			}
		})
		// With no retries, requests in flight to the dead pod fail until
		// failure accrual ejects it (7 consecutive failures); after that only
		// the occasional probe, backing off, may fail.
		var burst, probes []time.Duration
		for _, at := range r.failedAt {
			if d := at.Sub(killedAt); d < time.Second {
				burst = append(burst, d)
			} else {
				probes = append(probes, d)
			}
		}
		t.Logf("answers: %v; failures within 1s of the kill: %d, later: %v", r.byPod, len(burst), probes)
		if len(burst) == 0 || len(burst) > 7+4 {
			t.Errorf("%d failures while ejecting the dead pod, want 1..11 (first: %v)", len(burst), r.firstErr)
		}
		if len(probes) > 3 {
			t.Errorf("failures did not stop after ejection: %v", probes)
		}
		if r.byPod["web-2"] == 0 {
			t.Error("the surviving pods got no traffic")
		}
		// The pod is deleted: the Service stops listing it.
		delete(podIPs, "web-1")
		writeWebService(t, storeDir, podIPs)
		testkit.Eventually(t, 15*time.Second, func() error {
			if r := load(300*time.Millisecond, nameOnly, nil); r.failures != 0 || r.byPod["web-1"] != 0 {
				return fmt.Errorf("web-1 still in use after leaving the Service: %v, %d failures (first: %v)", r.byPod, r.failures, r.firstErr)
			}
			return nil
		})
	})

	t.Run("control plane away and back", func(t *testing.T) {
		// Both lookups in use (idle ones are dropped after 5s, and a lookup
		// started while the control plane is away falls back to the address).
		if r := load(500*time.Millisecond, both, nil); r.failures != 0 {
			t.Fatalf("%d failures before stopping the control plane (first: %v)", r.failures, r.firstErr)
		}
		if err := dst.Stop(); err != nil {
			t.Logf("stopping destination: %v", err)
		}
		r := load(2*time.Second, both, nil)
		if r.failures != 0 {
			t.Fatalf("%d failures with the control plane away (first: %v): the last known endpoints must stay", r.failures, r.firstErr)
		}
		// Back: a change made meanwhile (web-3 leaves) must reach the proxy.
		dst = dstPod.Start(t, dstSpec)
		delete(podIPs, "web-3")
		writeWebService(t, storeDir, podIPs)
		testkit.Eventually(t, 30*time.Second, func() error {
			r := load(time.Second, both, nil)
			if r.failures != 0 || r.byPod["web-3"] != 0 || r.byPod["web-2"] == 0 {
				return fmt.Errorf("the proxy has not caught up with the returning control plane: %v, %d failures", r.byPod, r.failures)
			}
			return nil
		})
	})
}
