package localmesh_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/internal/syncbuf"
	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/internal/testnet"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
)

// TestDemo runs `linkerd demo` as a user would: from nothing to the demo
// app's traffic flowing, meshed with mTLS on every edge, with the broken
// choice (and only it) failing; Ctrl-C then leaves nothing behind.
func TestDemo(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables", "unshare")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd", "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-controller", "./cmd/linkerd-demo")
	base, err := os.MkdirTemp("", "l5dl-demo-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, linkerd: bins["linkerd"], stateDir: filepath.Join(base, "state"), binDir: filepath.Dir(bins["linkerd-proxy"])}
	rulesBefore := hostProxyInitRules(t)

	start := time.Now()
	cmd := exec.Command(c.linkerd, "demo", "--state-dir", c.stateDir, "--bin-dir", c.binDir, "--rate", "10", "--for", "3m")
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
		t.Logf("linkerd demo output:\n%s", out.String())
	})

	// Up: every demo workload recorded and the bot's votes reaching web.
	var bot, web, prom, dest *localmesh.Workload
	if err := testkit.Poll(60*time.Second, func() error {
		if _, err := os.Stat(filepath.Join(c.stateDir, "state.json")); err != nil {
			return err
		}
		s := c.state()
		for _, w := range s.Workloads {
			switch {
			case w.Namespace == "demo" && w.Name == "bot":
				bot = w
			case w.Namespace == "demo" && w.Name == "web":
				web = w
			case w.Namespace == localmesh.VizNamespace && w.Name == "prometheus":
				prom = w
			case w.Namespace == localmesh.ControlPlaneNamespace && w.Name == "linkerd-destination":
				dest = w
			}
		}
		if bot == nil || web == nil {
			return errors.New("no demo/bot or demo/web yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("demo workloads never appeared: %v\n%s", err, out.String())
	}
	// Workloads are recorded before their pods finish starting.
	for _, w := range []*localmesh.Workload{bot, web} {
		waitReady(t, w)
	}
	webID := "web.demo.serviceaccount.identity.linkerd.cluster.local"
	waitMetric(t, bot, "response_total", map[string]string{"direction": "outbound", "tls": "true", "server_id": webID,
		"classification": "success"}, 1)
	elapsed := time.Since(start)
	t.Logf("from nothing to meshed traffic in %v", elapsed)
	if elapsed > 30*time.Second {
		t.Errorf("the demo took %v to come up, want < 30s", elapsed)
	}

	// The broken choice: 500s on the bot->web edge, gRPC Unknown on web->voting.
	waitMetric(t, bot, "response_total", map[string]string{"direction": "outbound", "server_id": webID,
		"status_code": "500", "classification": "failure"}, 1)
	waitMetric(t, web, "response_total", map[string]string{"direction": "outbound", "tls": "true",
		"server_id": "voting.demo.serviceaccount.identity.linkerd.cluster.local", "grpc_status": "2", "classification": "failure"}, 1)
	waitMetric(t, web, "response_total", map[string]string{"direction": "outbound", "tls": "true",
		"server_id": "items.demo.serviceaccount.identity.linkerd.cluster.local", "classification": "success"}, 1)
	// Nothing else fails: every failure on the web->voting edge is the gRPC
	// error, and web->items never fails; every outbound connection is mTLS.
	if n := metric(t, web, "response_total", map[string]string{"direction": "outbound", "dst_service": "items", "classification": "failure"}); n != 0 {
		t.Errorf("%v failed requests from web to items", n)
	}
	webMetrics := scrape(t, web)
	votingFailures := webMetrics.sum("response_total", map[string]string{"direction": "outbound", "dst_service": "voting", "classification": "failure"})
	brokenVotes := webMetrics.sum("response_total", map[string]string{"direction": "outbound", "dst_service": "voting", "classification": "failure", "grpc_status": "2"})
	if votingFailures != brokenVotes {
		t.Errorf("web->voting: %v failures, of which %v are the broken choice", votingFailures, brokenVotes)
	}
	botMetrics := scrape(t, bot)
	botFailures := botMetrics.sum("response_total", map[string]string{"direction": "outbound", "classification": "failure"})
	if n := botMetrics.sum("response_total", map[string]string{"direction": "outbound", "classification": "failure", "status_code": "500"}); n != botFailures {
		t.Errorf("bot->web: %v failures, of which %v are the broken choice's 500s", botFailures, n)
	}
	for _, w := range []*localmesh.Workload{bot, web} {
		if n := metric(t, w, "tcp_open_total", map[string]string{"direction": "outbound", "peer": "dst", "tls": "no_identity"}); n != 0 {
			t.Errorf("%s opened %v connections without mTLS", w.Name, n)
		}
		m := scrape(t, w)
		all := m.sum("response_total", map[string]string{"direction": "outbound"})
		if tls := m.sum("response_total", map[string]string{"direction": "outbound", "tls": "true"}); tls != all || all == 0 {
			t.Errorf("%s: %v of %v outbound responses over mTLS, want all", w.Name, tls, all)
		}
	}

	// A real Prometheus scrapes every proxy, with the pods' labels.
	if prom == nil {
		t.Fatal("no prometheus pod in the local mesh (is prometheus installed?)")
	}
	for _, q := range []string{
		`sum(response_total{namespace="demo",deployment="web",direction="outbound",classification="failure"})`,
		`sum(response_total{namespace="demo",deployment="bot",direction="outbound",tls="true"})`,
	} {
		if v := promQuery(t, prom, q); v <= 0 {
			t.Errorf("prometheus: %s = %v, want > 0", q, v)
		}
	}

	// Killing a service's process: its supervisor restarts it, and
	// destination removes its endpoint, then adds it back.
	s := c.state()
	voting := workload(t, s, "demo", "voting")
	votingAuthority := demoAuthority("voting")
	updates := watchEndpoints(t, dest, votingAuthority)
	expectUpdate(t, updates, "voting's endpoint", func(u *destinationv1.Update) bool { return addsIP(u, voting.IP) })
	oldPID := c.appPID(voting)
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	expectUpdate(t, updates, "the removal of voting's endpoint", func(u *destinationv1.Update) bool {
		return removesIP(u, voting.IP) || (u.GetNoEndpoints() != nil && u.GetNoEndpoints().GetExists())
	})
	expectUpdate(t, updates, "voting's endpoint back", func(u *destinationv1.Update) bool { return addsIP(u, voting.IP) })
	if st := c.waitRestarted(voting, oldPID, 1); st.Restarts != 1 {
		t.Errorf("voting restarted %d times, want once", st.Restarts)
	}
	if out := c.must("status"); !regexp.MustCompile(`(?m)^demo\s+voting\s.*\sready\s+ready\s+1\s`).MatchString(out) {
		t.Errorf("status does not show voting restarted once and ready:\n%s", out)
	}
	votingOK := map[string]string{"direction": "outbound", "tls": "true", "dst_service": "voting", "classification": "success"}
	waitMetric(t, web, "response_total", votingOK, metric(t, web, "response_total", votingOK)+1)

	// A second backend under web's Service, by an applied EndpointSlice:
	// it gets a share of the bot's traffic within seconds.
	demoBin := filepath.Join(c.binDir, "linkerd-demo")
	c.must("run", "--name", "web-2", "--namespace", "demo", "--port", "8080", "--", demoBin, "web", "--port", "8080",
		"--items-addr", demoAuthority("items"), "--voting-addr", votingAuthority)
	web2 := workload(t, c.state(), "demo", "web-2")
	slice := filepath.Join(base, "web-2.yaml")
	if err := os.WriteFile(slice, []byte(fmt.Sprintf(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-second-backend
  namespace: demo
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: port-8080, port: 8080, protocol: TCP}]
endpoints:
- addresses: [%s]
  conditions: {ready: true}
  targetRef: {kind: Pod, namespace: demo, name: web-2}
`, web2.IP)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Warm web-2's own connections to items and voting, so that its
	// first answers to the bot are not slowed by their handshakes (which
	// would set the balancer's latency estimate of it back).
	web2VIP := c.state().Services["demo/web-2"]
	for _, path := range []string{"/api/list", "/api/leaderboard"} {
		testkit.Eventually(t, 10*time.Second, func() error {
			code, _, err := get(bot.NetNS, "http://"+web2VIP.String()+":8080"+path, demoAuthority("web-2"))
			if err != nil || code != 200 {
				return fmt.Errorf("GET %s from web-2: %d %v", path, code, err)
			}
			return nil
		})
	}
	toWeb := map[string]string{"direction": "outbound", "tls": "true", "server_id": webID}
	toWeb2 := map[string]string{"direction": "outbound", "tls": "true", "server_id": web2.Identity}
	webUpdates := watchEndpoints(t, dest, demoAuthority("web"))
	expectUpdate(t, webUpdates, "web's endpoint", func(u *destinationv1.Update) bool { return addsIP(u, web.IP) })
	web1Before := metric(t, bot, "response_total", toWeb)
	applied := time.Now()
	c.must("apply", "-f", slice)
	expectUpdate(t, webUpdates, "web-2 as an endpoint of web", func(u *destinationv1.Update) bool { return addsIP(u, web2.IP) })
	if d := time.Since(applied); d > 3*time.Second {
		t.Errorf("destination added the applied endpoint %v after the apply, want within 3s", d)
	}
	// The bot's proxy sends a new endpoint its next request (exploration),
	// then ramps its share up over 10 s (slow start; see proxy/balance):
	// the first request as soon as the bot sends one, a few more within
	// seconds.
	waitMetricFor(t, bot, "response_total", toWeb2, 1, 10*time.Second)
	t.Logf("the second backend got the bot's first request %v after the apply", time.Since(applied))
	waitMetricFor(t, bot, "response_total", toWeb2, 3, 20*time.Second)
	t.Logf("the second backend got 3 of the bot's requests %v after the apply", time.Since(applied))
	// Which backend gets most of it is the balancer's call (the faster
	// one): not asserted.
	t.Logf("meanwhile the first backend got %v", metric(t, bot, "response_total", toWeb)-web1Before)
	waitMetric(t, web2, "response_total", map[string]string{"direction": "inbound", "tls": "true", "client_id": "bot.demo.serviceaccount.identity.linkerd.cluster.local"}, 1)

	// Ctrl-C: everything stops and is cleaned up.
	s = c.state()
	pids := c.pids(s)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if exitErr != nil {
			t.Errorf("linkerd demo exited with %v", exitErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("linkerd demo did not stop after SIGINT")
	}
	c.leftovers(s, pids, rulesBefore)
}

// demoAuthority is the authority of a demo Service.
func demoAuthority(svc string) string {
	return fmt.Sprintf("%s.%s.svc.cluster.local:%d", svc, localmesh.DemoNamespace, localmesh.DemoPort)
}

// watchEndpoints subscribes to authority on the local mesh's destination
// service, as a proxy does (from inside its pod, to its port), and returns
// the stream of updates; the subscription ends with the test.
func watchEndpoints(t *testing.T, dest *localmesh.Workload, authority string) <-chan *destinationv1.Update {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///127.0.0.1:8086", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return localmesh.DialContext(ctx, dest.NetNS, "tcp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := destinationv1.NewDestinationClient(conn).Get(ctx, &destinationv1.GetRequest{Authority: authority})
	if err != nil {
		cancel()
		conn.Close()
		t.Fatalf("destination Get %s: %v", authority, err)
	}
	updates := make(chan *destinationv1.Update, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(updates)
		for {
			u, err := stream.Recv()
			if err != nil {
				return
			}
			select {
			case updates <- u:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		conn.Close()
	})
	return updates
}

// expectUpdate waits (bounded) for an update matching ok, skipping others.
func expectUpdate(t *testing.T, updates <-chan *destinationv1.Update, what string, ok func(*destinationv1.Update) bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case u, open := <-updates:
			if !open {
				t.Fatalf("the destination stream ended before %s", what)
			}
			t.Logf("destination: %v", u)
			if ok(u) {
				return
			}
		case <-timeout:
			t.Fatalf("destination never sent %s", what)
		}
	}
}

func addsIP(u *destinationv1.Update, ip netip.Addr) bool {
	for _, ep := range u.GetAdd().GetEndpoints() {
		if a, ok := netip.AddrFromSlice(ep.GetAddr().GetIp()); ok && a.Unmap() == ip {
			return true
		}
	}
	return false
}

func removesIP(u *destinationv1.Update, ip netip.Addr) bool {
	for _, addr := range u.GetRemove().GetAddrs() {
		if a, ok := netip.AddrFromSlice(addr.GetIp()); ok && a.Unmap() == ip {
			return true
		}
	}
	return false
}

// promQuery polls an instant query on the mesh's Prometheus (from inside its
// pod) until it returns a positive value or 30 s pass; it returns the value.
func promQuery(t *testing.T, prom *localmesh.Workload, query string) float64 {
	t.Helper()
	c := localmesh.HTTPClient(prom.NetNS, 5*time.Second)
	u := fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", localmesh.PrometheusPort, url.QueryEscape(query))
	var v float64
	_ = testkit.Poll(30*time.Second, func() error {
		if resp, err := c.Get(u); err == nil {
			var body struct {
				Data struct {
					Result []struct {
						Value []any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err == nil && len(body.Data.Result) > 0 && len(body.Data.Result[0].Value) == 2 {
				s, _ := body.Data.Result[0].Value[1].(string)
				v, _ = strconv.ParseFloat(s, 64)
			}
		}
		if v <= 0 {
			return errors.New("no positive value yet")
		}
		return nil
	})
	return v
}

// waitReady waits until the pod's proxy answers /ready.
func waitReady(t *testing.T, w *localmesh.Workload) {
	t.Helper()
	c := localmesh.HTTPClient(w.NetNS, 2*time.Second)
	testkit.Eventually(t, 30*time.Second, func() error {
		resp, err := c.Get("http://127.0.0.1:4191/ready")
		if err != nil {
			return fmt.Errorf("proxy of %s/%s not ready: %w", w.Namespace, w.Name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("proxy of %s/%s not ready: %s", w.Namespace, w.Name, resp.Status)
		}
		return nil
	})
}
