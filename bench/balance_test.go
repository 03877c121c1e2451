package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/internal/testnet"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// The balanced variants' Service: a virtual IP per variant that only the
// client's proxy knows, through the destination service.
const (
	destinationPort  = 8086 // of the destination service, in the control pod
	destinationAdmin = 9996
	vipRoute         = "10.96.0.0/12"
)

// vip is the virtual IP of the Service of the variant with n backends.
func vip(n int) string { return fmt.Sprintf("10.96.0.%d", 10+n) }

// backendPorts are the HTTP and gRPC ports of backend i (0-based) in the
// server pod: backend 0 is the harness's fortio server.
func backendPorts(i int) (httpP, grpcP int) { return httpPort + i, grpcPort - i }

// linkerdBalanced is our mTLS pair where the client's proxy finds the
// server through the destination service: the load goes to a Service's
// virtual IP, whose endpoints are `backends` fortio servers in the server
// pod (on different ports, behind the one server proxy), and the client's
// proxy balances over them (power of two choices over peak EWMA). The same
// number of proxies as the one-endpoint variant, so the difference in CPU
// per request is what balancing costs.
type linkerdBalanced struct {
	linkerdPair
	plane    *sharedPlane
	fortio   string
	backends int
	// routes adds a ServiceProfile with 10 routes to the Service, the
	// matched one retryable (see routes_test.go).
	routes bool
	cp     *identityPlane // set by Prepare
}

func (l *linkerdBalanced) Name() string {
	if l.routes {
		return oursRoutesName
	}
	return fmt.Sprintf("linkerd-go-lb%d-mtls", l.backends)
}

// vip is the variant's Service's virtual IP.
func (l *linkerdBalanced) vip() string {
	if l.routes {
		return routesVIP
	}
	return vip(l.backends)
}

func (l *linkerdBalanced) Prepare(t testing.TB, p pods) {
	t.Helper()
	// The other backends, before the iptables rules exist.
	for i := 1; i < l.backends; i++ {
		httpP, grpcP := backendPorts(i)
		proc := startPinned(t, p.server, loadCPU, testnet.ProcSpec{
			Name: fmt.Sprintf("fortio-server-%s-%d", l.Name(), i),
			Path: l.fortio,
			Args: []string{"server", "-http-port", fmt.Sprint(httpP), "-grpc-port", fmt.Sprint(grpcP),
				"-redirect-port", "disabled", "-tcp-port", "disabled", "-udp-port", "disabled", "-loglevel", "warning"},
			Dir: t.TempDir(),
		})
		for _, port := range []int{httpP, grpcP} {
			if err := waitTCP(p.server, proc, p.server.Addr(uint16(port))); err != nil {
				t.Fatalf("%s: backend %d: %v", l.Name(), i, err)
			}
		}
	}
	l.linkerdPair.Prepare(t, p)
	cp, err := l.plane.get(t, p.client.Network())
	if err != nil {
		t.Fatalf("%s: control plane: %v", l.Name(), err)
	}
	l.cp = cp
	dir, err := l.plane.destination(t)
	if err != nil {
		t.Fatalf("%s: destination service: %v", l.Name(), err)
	}
	name := strings.TrimSuffix(strings.TrimPrefix(l.Name(), oursName+"-"), "-mtls")
	yaml := balancedServiceYAML(name, l.vip(), p.server.IP.String(), l.backends)
	if l.routes {
		yaml += routesProfileYAML(name)
	}
	tmp := filepath.Join(dir, "."+name+".yaml")
	if err := os.WriteFile(tmp, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name+".yaml")); err != nil {
		t.Fatal(err)
	}
	// The virtual IP needs a route; iptables sends it to the proxy.
	p.client.Exec(t, "ip", "route", "add", vipRoute, "dev", "eth0")
}

func (l *linkerdBalanced) Start(t testing.TB, p pods) (endpoints, []int, error) {
	t.Helper()
	svc := addr(l.cp.pod.IP.String(), identityPort)
	clientEnv, err := l.cp.proxyEnv("client", meshAppNS, svc)
	if err != nil {
		return endpoints{}, nil, err
	}
	clientEnv = append(clientEnv,
		"LINKERD2_PROXY_DESTINATION_SVC_ADDR="+addr(l.cp.pod.IP.String(), destinationPort),
		// The control pod's proxy terminates mTLS for the destination service.
		"LINKERD2_PROXY_DESTINATION_SVC_NAME="+identitySvcID,
		fmt.Sprintf(`LINKERD2_PROXY_DESTINATION_CONTEXT={"ns":%q,"pod":"client"}`, meshAppNS))
	serverEnv, err := l.cp.proxyEnv("server", meshAppNS, svc)
	if err != nil {
		return endpoints{}, nil, err
	}
	_, pids, client, err := l.startProxies(t, p, clientEnv, serverEnv)
	if err != nil {
		return endpoints{}, nil, err
	}
	e := endpoints{HTTP: "http://" + addr(l.vip(), httpPort) + "/", GRPC: addr(l.vip(), grpcPort)}
	if err := waitHTTP(p.client, client, e.HTTP); err != nil {
		return endpoints{}, nil, fmt.Errorf("through the Service: %w", err)
	}
	if l.routes {
		if err := waitRouted(p, e.HTTP); err != nil {
			return endpoints{}, nil, err
		}
	}
	if err := checkMTLS(p.client, client, p.server.IP.String()); err != nil {
		return endpoints{}, nil, err
	}
	spread, err := burstSpread(p.client, e.HTTP)
	if err != nil {
		return endpoints{}, nil, err
	}
	if len(spread) != l.backends {
		return endpoints{}, nil, fmt.Errorf("a burst of concurrent requests reached %d of %d endpoints: %v", len(spread), l.backends, spread)
	}
	t.Logf("%s: a burst of concurrent requests went to %v", l.Name(), spread)
	return e, pids, nil
}

// burstSpread sends concurrent requests to url from pod and returns how
// many went to each endpoint, from the client proxy's metrics.
func burstSpread(pod *testnet.Pod, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tr := &http.Transport{DialContext: pod.DialContext, MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if err := getOK(ctx, client, url); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("burst: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:4191/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	return requestsByTarget(resp.Body, url)
}

// requestsByTarget sums the outbound request_total series whose authority
// is url's host, by target_addr.
func requestsByTarget(r io.Reader, url string) (map[string]float64, error) {
	authority := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := map[string]float64{}
	for _, m := range fams["request_total"].GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		if labels["direction"] == "outbound" && labels["authority"] == authority {
			out[labels["target_addr"]] += m.GetCounter().GetValue()
		}
	}
	return out, nil
}

// destination starts the destination service in the control pod once,
// over a local store; it returns the store's directory, where the
// variants write their Services.
func (s *sharedPlane) destination(t testing.TB) (string, error) {
	t.Helper()
	s.dstOnce.Do(func() {
		cp := s.cp
		s.storeDir = filepath.Join(cp.dir, "store")
		if s.dstErr = os.MkdirAll(s.storeDir, 0o755); s.dstErr != nil {
			return
		}
		proc := startPinned(t, cp.pod, loadCPU, testnet.ProcSpec{Name: "destination", Path: s.controllerBin, Args: []string{"destination",
			"-addr", fmt.Sprintf(":%d", destinationPort), "-admin-addr", fmt.Sprintf(":%d", destinationAdmin),
			"-local-store", s.storeDir, "-controller-namespace", meshControlNS, "-identity-trust-domain", meshTrustDomain}})
		s.dstErr = waitTCP(cp.pod, proc, addr("127.0.0.1", destinationPort))
	})
	return s.storeDir, s.dstErr
}

// balancedServiceYAML is the Service name (namespace meshAppNS, cluster IP
// vip, ports 8080 and 8079) whose endpoints are the `backends` fortio
// servers of the meshed server pod at podIP: one EndpointSlice per
// backend, since they differ in port numbers.
func balancedServiceYAML(name, vip, podIP string, backends int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  clusterIP: %[3]s
  ports:
  - {name: http, port: %[4]d, targetPort: http, protocol: TCP}
  - {name: grpc, port: %[5]d, targetPort: grpc, protocol: TCP}
---
apiVersion: v1
kind: Pod
metadata:
  name: %[1]s-server
  namespace: %[2]s
  labels: {app: %[1]s, %[6]s: %[7]s}
spec:
  serviceAccountName: server
  containers:
  - {name: fortio, image: fortio}
status:
  phase: Running
  podIP: %[8]s
  podIPs: [{ip: %[8]s}]
`, name, meshAppNS, vip, httpPort, grpcPort, k8s.ControllerNSLabel, meshControlNS, podIP)
	for i := range backends {
		httpP, grpcP := backendPorts(i)
		fmt.Fprintf(&b, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %[1]s-%[2]d
  namespace: %[3]s
  labels: {%[4]s: %[1]s}
addressType: IPv4
ports:
- {name: http, port: %[5]d, protocol: TCP}
- {name: grpc, port: %[6]d, protocol: TCP}
endpoints:
- addresses: [%[7]s]
  conditions: {ready: true}
  targetRef: {kind: Pod, namespace: %[3]s, name: %[1]s-server}
`, name, i, meshAppNS, k8s.ServiceNameLabel, httpP, grpcP, podIP)
	}
	return b.String()
}

// TestBalancedServiceYAML loads the balanced variant's Service into the
// destination service's local store: one Service at the virtual IP, one
// meshed pod, and one EndpointSlice per backend with its own ports.
func TestBalancedServiceYAML(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lb3.yaml"), []byte(balancedServiceYAML("lb3", vip(3), "10.248.0.5", 3)), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := store.NewLocal(dir, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	st.Scan()
	svcs := st.ServicesByIP(netip.MustParseAddr(vip(3)))
	if len(svcs) != 1 || svcs[0].Name != "lb3" || len(svcs[0].Spec.Ports) != 2 {
		t.Fatalf("Services at %s: %v", vip(3), svcs)
	}
	pod, ok := st.Pod(meshAppNS, "lb3-server")
	if !ok || pod.Status.PodIP != "10.248.0.5" || pod.Labels[k8s.ControllerNSLabel] != meshControlNS || pod.Spec.ServiceAccountName != "server" {
		t.Fatalf("pod: %v %v", ok, pod)
	}
	var got []string
	for _, es := range st.EndpointSlices(meshAppNS, "lb3") {
		for _, p := range es.Ports {
			got = append(got, fmt.Sprintf("%s=%d", *p.Name, *p.Port))
		}
		if len(es.Endpoints) != 1 || es.Endpoints[0].Addresses[0] != "10.248.0.5" || es.Endpoints[0].TargetRef.Name != "lb3-server" {
			t.Errorf("slice %s endpoints %v", es.Name, es.Endpoints)
		}
	}
	slices.Sort(got)
	want := []string{"grpc=8077", "grpc=8078", "grpc=8079", "http=8080", "http=8081", "http=8082"}
	if !slices.Equal(got, want) {
		t.Errorf("slice ports %v, want %v", got, want)
	}
}

func TestRequestsByTarget(t *testing.T) {
	const text = `# TYPE request_total counter
request_total{direction="outbound",authority="10.96.0.13:8080",target_addr="10.0.0.2:8080"} 10
request_total{direction="outbound",authority="10.96.0.13:8080",target_addr="10.0.0.2:8081"} 5
request_total{direction="outbound",authority="other:80",target_addr="10.0.0.2:8082"} 7
request_total{direction="inbound",authority="10.96.0.13:8080",target_addr="10.0.0.2:8082"} 7
`
	got, err := requestsByTarget(strings.NewReader(text), "http://10.96.0.13:8080/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["10.0.0.2:8080"] != 10 || got["10.0.0.2:8081"] != 5 {
		t.Errorf("requestsByTarget = %v", got)
	}
}
