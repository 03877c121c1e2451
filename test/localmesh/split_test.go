package localmesh_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/internal/testnet"
)

// TestLocalSplit: on the local mesh, `linkerd local apply -f` of a
// TrafficSplit shifts web's traffic to its canary within seconds, a 90/10
// split is measured on the responses and on the client proxy's metrics,
// an HTTPRoute on the Service sends the requests with a header to the
// canary, and a split whose weights sum to 0 is refused naming the field.
func TestLocalSplit(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables", "iptables-save", "unshare", "getent")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd", "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-controller", "./test/testapp")
	base, err := os.MkdirTemp("", "l5dl-split-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, linkerd: bins["linkerd"], stateDir: filepath.Join(base, "state"), binDir: filepath.Dir(bins["linkerd-proxy"])}
	t.Cleanup(func() { _, _ = c.run("down") })
	c.must("up")
	testapp := bins["testapp"]
	for _, name := range []string{"web", "web-v2"} {
		c.must("run", "--name", name, "--namespace", "demo", "--port", "8080", "--",
			testapp, "--name", name, "--http", "8080", "--grpc", "0", "--tcp", "0", "--banner", "0")
	}
	c.must("run", "--name", "client", "--namespace", "demo", "--", "sleep", "3600")
	s := c.state()
	client := workload(t, s, "demo", "client")
	vip := s.Services["demo/web"].String()

	hc := localmesh.HTTPClient(client.NetNS, 10*time.Second)
	// call sends GET / to web through the client's proxy and returns which
	// backend answered ("web" or "web-v2").
	call := func(header map[string]string) (string, error) {
		req, err := http.NewRequest(http.MethodGet, "http://"+vip+":8080/", nil)
		if err != nil {
			return "", err
		}
		req.Host = "web.demo.svc.cluster.local:8080"
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return strings.TrimPrefix(strings.TrimSpace(string(b)), "testapp "), err
	}
	count := func(n int, header map[string]string) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range n {
			who, err := call(header)
			if err != nil {
				t.Fatalf("GET web: %v", err)
			}
			got[who]++
		}
		return got
	}
	// Before any split, web answers (after the proxies are ready).
	deadline := time.Now().Add(30 * time.Second)
	for {
		who, err := call(nil)
		if err == nil && who == "web" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web never answered through the mesh: %q %v", who, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	write := func(name, doc string) string {
		f := filepath.Join(base, name)
		if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tsDoc := func(w1, w2 string) string {
		return fmt.Sprintf(`apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: web-split, namespace: demo}
spec:
  service: web
  backends:
  - {service: web, weight: %s}
  - {service: web-v2, weight: %s}
`, w1, w2)
	}

	// Bad input: refused, naming the field, nothing stored.
	if out, err := c.run("apply", "-f", write("split.yaml", tsDoc("0", "0"))); err == nil || !strings.Contains(out, "spec.backends: the weights sum to 0") {
		t.Fatalf("a split with weights summing to 0: %v %q, want it refused naming spec.backends", err, out)
	}
	if matches, _ := filepath.Glob(filepath.Join(c.stateDir, "store", "*split*")); len(matches) != 0 {
		t.Fatalf("a refused split was stored: %v", matches)
	}

	// Canary shift: everything to web-v2, within seconds.
	start := time.Now()
	c.must("apply", "-f", write("split.yaml", tsDoc("0", "100")))
	for {
		if who, err := call(nil); err == nil && who == "web-v2" {
			break
		}
		if time.Since(start) > 15*time.Second {
			t.Fatal("the TrafficSplit did not shift traffic to web-v2 within 15s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("shift to web-v2 took effect %v after local apply began", time.Since(start).Round(time.Millisecond))
	if got := count(50, nil); got["web-v2"] != 50 {
		t.Errorf("after the shift: %v, want all 50 to web-v2", got)
	}

	// 90/10: measured on the responses and on the client proxy's metrics.
	c.must("apply", "-f", write("split.yaml", tsDoc("900m", "100m")))
	time.Sleep(2 * time.Second) // the local store's poll and the profile stream
	before := scrape(t, client).sum("response_total", map[string]string{"direction": "outbound", "dst_service": "web-v2"})
	const n = 600
	got := count(n, nil)
	t.Logf("90/10 split over %d requests: %v", n, got)
	// 60 expected; ±30 is over 3.5 standard deviations.
	if got["web-v2"] < 30 || got["web-v2"] > 90 || got["web"]+got["web-v2"] != n {
		t.Errorf("90/10 split: %v, want web-v2 60 ± 30 of %d", got, n)
	}
	after := scrape(t, client).sum("response_total", map[string]string{"direction": "outbound", "dst_service": "web-v2"})
	if d := int(after - before); d != got["web-v2"] {
		t.Errorf("client proxy's response_total{dst_service=web-v2} grew by %d, want %d (the responses web-v2 sent)", d, got["web-v2"])
	}

	// An HTTPRoute on the Service: requests with x-canary: 1 go to web-v2.
	c.must("apply", "-f", write("route.yaml", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-canary, namespace: demo}
spec:
  parentRefs: [{name: web, kind: Service, group: core, port: 8080}]
  rules:
  - matches: [{headers: [{name: x-canary, value: "1"}]}]
    backendRefs: [{name: web-v2, port: 8080}]
`))
	canary := map[string]string{"x-canary": "1"}
	start = time.Now()
	for {
		if got := count(20, canary); got["web-v2"] == 20 {
			break
		}
		if time.Since(start) > 15*time.Second {
			t.Fatal("the HTTPRoute did not send x-canary requests to web-v2 within 15s")
		}
	}
	if got := count(200, nil); got["web-v2"] > 60 {
		t.Errorf("requests without the header: %v, want them still split 90/10", got)
	}

	// An HTTPRoute's filters, applied by the client proxy: a header added
	// to the requests web gets, a redirect answered by the proxy itself.
	c.must("apply", "-f", write("filters.yaml", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-filters, namespace: demo}
spec:
  parentRefs: [{name: web, kind: Service, group: core, port: 8080}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /headers}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-route, value: filtered}]}
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
`))
	noFollow := *hc
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path string) (*http.Response, string, error) {
		req, err := http.NewRequest(http.MethodGet, "http://"+vip+":8080"+path, nil)
		if err != nil {
			return nil, "", err
		}
		req.Host = "web.demo.svc.cluster.local:8080"
		resp, err := noFollow.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	const wantLoc = "http://web.demo.svc.cluster.local:8080/new/a?b=1"
	start = time.Now()
	for {
		_, body, err := get("/headers")
		if err != nil {
			t.Fatalf("GET /headers: %v", err)
		}
		resp, _, err := get("/old/a?b=1")
		if err != nil {
			t.Fatalf("GET /old/a: %v", err)
		}
		headerOK := strings.Contains(body, `"X-Route": [`) && strings.Contains(body, `"filtered"`)
		redirectOK := resp.StatusCode == http.StatusMovedPermanently && resp.Header.Get("Location") == wantLoc
		if headerOK && redirectOK {
			if v := resp.Header.Get("l5d-proxy-error"); v != "" {
				t.Errorf("the redirect carries l5d-proxy-error %q", v)
			}
			break
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("the HTTPRoute's filters did not apply within 15s: /headers answered %s; /old/a?b=1: %d Location %q, want 301 %s",
				body, resp.StatusCode, resp.Header.Get("Location"), wantLoc)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
