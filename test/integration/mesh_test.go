// Package integration runs the real binaries in network-namespace "pods":
// each pod gets linkerd-init's iptables rules and a linkerd-proxy running as
// uid 2102, and traffic from pod A to pod B crosses both proxies.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/net/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd/internal/testnet"
)

const (
	proxyUID   = 2102
	httpPort   = 8080
	grpcPort   = 8082
	tcpPort    = 8083
	bannerPort = 3306 // server speaks first; opaque on both sides
)

// meshedPod is a pod with linkerd-init rules and a running proxy.
type meshedPod struct {
	*testnet.Pod
	proxy *testnet.Proc
}

type mesh struct {
	client, server *meshedPod
	app            *testnet.Proc
	// mtls: the proxies have identities and the client's proxy knows the
	// server's (through the static endpoints hook until discovery is wired).
	mtls bool
}

// newMesh starts a client and a server pod with the test app in the
// server pod; clientEnv is more environment for the client's proxy.
func newMesh(t *testing.T, mtls bool, clientEnv ...string) *mesh {
	t.Helper()
	testnet.Require(t, "ip", "nsenter", "iptables")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-controller", "./test/testapp")
	n := testnet.New(t)
	m := &mesh{mtls: mtls}
	if !mtls {
		m.client = startMeshedPod(t, n.AddPod("client"), bins, clientEnv...)
		m.server = startMeshedPod(t, n.AddPod("server"), bins)
	} else {
		cp := startControlPlane(t, n, bins)
		clientPod, serverPod := n.AddPod("client"), n.AddPod("server")
		serverID := identityName("server", appNS)
		env := append(cp.proxyEnv(t, "client", appNS, cp.remoteIdentityAddr()),
			fmt.Sprintf("LINKERD2_PROXY_STATIC_ENDPOINTS=%s=%s,%s:%d=%s;opaque", serverPod.IP, serverID, serverPod.IP, bannerPort, serverID))
		m.client = startMeshedPod(t, clientPod, bins, append(env, clientEnv...)...)
		m.server = startMeshedPod(t, serverPod, bins, cp.proxyEnv(t, "server", appNS, cp.remoteIdentityAddr())...)
	}
	m.app = m.server.Start(t, testnet.ProcSpec{
		Name: "app", Path: bins["testapp"],
		Args: []string{"--name", "server", "--http", fmt.Sprint(httpPort), "--grpc", fmt.Sprint(grpcPort),
			"--tcp", fmt.Sprint(tcpPort), "--banner", fmt.Sprint(bannerPort)},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, port := range []int{httpPort, grpcPort, tcpPort, bannerPort} {
		if err := m.server.WaitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			t.Fatalf("app port %d: %v", port, err)
		}
	}
	return m
}

func startMeshedPod(t *testing.T, p *testnet.Pod, bins map[string]string, env ...string) *meshedPod {
	t.Helper()
	p.Exec(t, bins["linkerd-init"], "--incoming-proxy-port", "4143", "--outgoing-proxy-port", "4140",
		"--proxy-uid", fmt.Sprint(proxyUID), "--inbound-ports-to-ignore", "4190,4191", "--log-level", "warn")
	proxy := p.Start(t, testnet.ProcSpec{
		Name: "proxy-" + p.Name, Path: bins["linkerd-proxy"],
		User: &testnet.Credential{UID: proxyUID, GID: proxyUID},
		Env: append([]string{
			"LINKERD2_PROXY_LOG=warn,linkerd=debug",
			"LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION=" + fmt.Sprint(bannerPort),
			"LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD=20s",
		}, env...),
	})
	mp := &meshedPod{Pod: p, proxy: proxy}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := mp.adminGet("/ready")
		if err == nil && resp == "ready\n" {
			return mp
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy in %s not ready: %q %v", p.Name, resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpClient makes requests from inside the pod, so iptables sends them through its proxy.
func (p *meshedPod) httpClient(h2c bool) *http.Client {
	tr := &http.Transport{DialContext: p.DialContext, DisableCompression: true}
	if h2c {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (p *meshedPod) adminGet(path string) (string, error) {
	c := p.httpClient(false)
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://127.0.0.1:4191" + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// metric sums every series of family name whose labels include want.
func (p *meshedPod) metric(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	text, err := p.adminGet("/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", p.Name, err)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse metrics of %s: %v", p.Name, err)
	}
	fam := fams[name]
	if fam == nil {
		return 0
	}
	var sum float64
	for _, m := range fam.Metric {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.Label {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// waitMetric polls until the metric reaches at least min (responses are
// counted when their stream ends, which may be a moment after the client saw it).
func (p *meshedPod) waitMetric(t *testing.T, name string, labels map[string]string, min float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := p.metric(t, name, labels)
		if v >= min {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s%v = %v, want >= %v", p.Name, name, labels, v, min)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// outTLS and inTLS are the TLS labels of the client proxy's outbound and the
// server proxy's inbound traffic.
func (m *mesh) outTLS() map[string]string {
	if m.mtls {
		return map[string]string{"tls": "true", "server_id": identityName("server", appNS)}
	}
	return map[string]string{"tls": "no_identity", "no_tls_reason": "not_provided_by_service_discovery"}
}

func (m *mesh) inTLS() map[string]string {
	if m.mtls {
		return map[string]string{"tls": "true", "client_id": identityName("client", appNS)}
	}
	return map[string]string{"tls": "no_identity", "no_tls_reason": "no_tls_from_remote"}
}

func TestMeshedTraffic(t *testing.T) {
	for _, mode := range []struct {
		name string
		mtls bool
	}{{"plaintext", false}, {"mTLS", true}} {
		t.Run(mode.name, func(t *testing.T) { testMeshedTraffic(t, newMesh(t, mode.mtls)) })
	}
}

func testMeshedTraffic(t *testing.T, m *mesh) {
	t.Helper()
	a, b := m.client, m.server
	target := func(port int) string { return b.Addr(uint16(port)) }
	httpAuthority := target(httpPort)

	t.Run("http1 keep-alive", func(t *testing.T) {
		c := a.httpClient(false)
		defer c.CloseIdleConnections()
		for i := range 5 {
			resp, err := c.Get("http://" + httpAuthority + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "testapp server" {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
			}
		}
		out := with(m.outTLS(), "authority", httpAuthority, "direction", "outbound")
		in := with(m.inTLS(), "authority", httpAuthority, "direction", "inbound")
		a.waitMetric(t, "request_total", out, 5)
		b.waitMetric(t, "request_total", in, 5)
		a.waitMetric(t, "response_total", with(out, "status_code", "200", "classification", "success"), 5)
		b.waitMetric(t, "response_total", with(in, "status_code", "200", "classification", "success"), 5)
		a.waitMetric(t, "tcp_open_total", with(m.outTLS(), "direction", "outbound", "peer", "dst", "target_addr", httpAuthority), 1)
		b.waitMetric(t, "tcp_open_total", with(m.inTLS(), "direction", "inbound", "peer", "src", "target_addr", httpAuthority), 1)
		// One client connection: keep-alive held across the requests on both hops.
		if n := a.metric(t, "tcp_open_total", map[string]string{"direction": "outbound", "peer": "dst", "target_addr": httpAuthority}); n != 1 {
			t.Errorf("outbound proxy opened %v connections to the server pod, want 1", n)
		}
		if n := b.metric(t, "tcp_open_total", map[string]string{"direction": "inbound", "peer": "src", "target_addr": httpAuthority}); n != 1 {
			t.Errorf("inbound proxy accepted %v connections, want 1", n)
		}
	})

	t.Run("http1 chunked echo with trailers", func(t *testing.T) {
		body := make([]byte, 2<<20)
		_, _ = rand.Read(body)
		req, _ := http.NewRequest("POST", "http://"+httpAuthority+"/echo", io.NopCloser(bytes.NewReader(body)))
		req.ContentLength = -1 // chunked
		req.Header.Set("X-Test-Marker", "kept")
		req.Trailer = http.Header{"X-Test-Trailer": {"sum-1"}}
		resp, err := a.httpClient(false).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("echo: %d bytes back (want %d), err %v", len(got), len(body), err)
		}
		if resp.Header.Get("X-Echo-Header-X-Test-Marker") != "kept" {
			t.Errorf("request header lost: %v", resp.Header)
		}
		if v := resp.Trailer.Get("X-Test-Trailer"); v != "sum-1" {
			t.Errorf("trailer = %q, want sum-1", v)
		}
	})

	t.Run("http1 expect 100-continue", func(t *testing.T) {
		conn, err := a.DialContext(context.Background(), "tcp", httpAuthority)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		fmt.Fprintf(conn, "POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", httpAuthority)
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("want 100 Continue before the body, got %q %v", line, err)
		}
		_, _ = br.ReadString('\n')
		fmt.Fprint(conn, "hello")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(got) != "hello" {
			t.Fatalf("got %d %q", resp.StatusCode, got)
		}
	})

	t.Run("h2c", func(t *testing.T) {
		c := a.httpClient(true)
		defer c.CloseIdleConnections()
		resp, err := c.Post("http://"+httpAuthority+"/echo", "text/plain", strings.NewReader("over h2"))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.Header.Get("X-Echo-Proto") != "HTTP/2.0" || string(got) != "over h2" {
			t.Fatalf("client %s, app saw %q, body %q", resp.Proto, resp.Header.Get("X-Echo-Proto"), got)
		}
	})

	t.Run("grpc", func(t *testing.T) {
		grpcAuthority := target(grpcPort)
		conn, err := grpc.NewClient(grpcAuthority, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(a.DialTCP))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := testpb.NewTestServiceClient(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()

		if _, err := client.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 10}); err != nil {
			t.Fatalf("unary: %v", err)
		}
		_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Unknown), Message: "boom"}})
		if status.Code(err) != codes.Unknown {
			t.Fatalf("unary with requested status: %v, want Unknown", err)
		}

		stream, err := client.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := stream.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: int32(100 * (i + 1))}}}); err != nil {
				t.Fatal(err)
			}
			msg, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if n := len(msg.GetPayload().GetBody()); n != 100*(i+1) {
				t.Fatalf("stream message %d: %d bytes", i, n)
			}
		}
		if err := stream.Send(&testpb.StreamingOutputCallRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.PermissionDenied), Message: "no"}}); err != nil {
			t.Fatal(err)
		}
		_ = stream.CloseSend()
		if _, err := stream.Recv(); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("stream ended with %v, want PermissionDenied", err)
		}

		labels := map[string]string{"authority": grpcAuthority, "status_code": "200"}
		for _, p := range []*meshedPod{a, b} {
			p.waitMetric(t, "response_total", with(labels, "grpc_status", "0", "classification", "success"), 1)
			p.waitMetric(t, "response_total", with(labels, "grpc_status", "2", "classification", "failure"), 1)
			p.waitMetric(t, "response_total", with(labels, "grpc_status", "7", "classification", "failure"), 1)
		}
	})

	t.Run("websocket", func(t *testing.T) {
		conn, err := a.DialContext(context.Background(), "tcp", httpAuthority)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := websocket.NewConfig("ws://"+httpAuthority+"/ws", "http://"+httpAuthority)
		ws, err := websocket.NewClient(cfg, conn)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		_ = ws.SetDeadline(time.Now().Add(10 * time.Second))
		for _, msg := range []string{"hello", strings.Repeat("ws", 50000)} {
			if _, err := ws.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(ws, got); err != nil || string(got) != msg {
				t.Fatalf("echo of %d bytes: %v", len(msg), err)
			}
		}
		b.waitMetric(t, "response_total", map[string]string{"direction": "inbound", "status_code": "101"}, 1)
	})

	t.Run("opaque tcp with half-close", func(t *testing.T) {
		conn, err := a.DialContext(context.Background(), "tcp", target(tcpPort))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		payload := make([]byte, 1<<20)
		_, _ = rand.Read(payload)
		go func() {
			_, _ = conn.Write(payload)
			_ = conn.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.ReadAll(conn) // EOF only arrives if half-close crossed both proxies
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("echo: %d of %d bytes, err %v", len(got), len(payload), err)
		}
		tl := map[string]string{"target_addr": target(tcpPort)}
		a.waitMetric(t, "tcp_write_bytes_total", with(tl, "direction", "outbound", "peer", "dst"), float64(len(payload)))
		b.waitMetric(t, "tcp_read_bytes_total", with(tl, "direction", "inbound", "peer", "src"), float64(len(payload)))
		a.waitMetric(t, "tcp_close_total", with(tl, "direction", "outbound", "peer", "src", "errno", ""), 1)
	})

	t.Run("server speaks first on an opaque port", func(t *testing.T) {
		start := time.Now()
		conn, err := a.DialContext(context.Background(), "tcp", target(bannerPort))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		elapsed := time.Since(start)
		if err != nil || !strings.HasPrefix(line, "220 ") {
			t.Fatalf("banner %q, %v", line, err)
		}
		if elapsed > time.Second {
			t.Fatalf("banner took %v: detection waited on a server-speaks-first port", elapsed)
		}
	})

	t.Run("client identity header", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+httpAuthority+"/headers", nil)
		req.Header.Set("l5d-client-id", "forged.identity")
		resp, err := a.httpClient(false).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := ""
		if m.mtls {
			want = identityName("client", appNS)
		}
		var headers map[string][]string
		if err := json.Unmarshal(body, &headers); err != nil {
			t.Fatalf("/headers: %v: %s", err, body)
		}
		if got := strings.Join(headers["L5d-Client-Id"], ","); got != want {
			t.Fatalf("app saw l5d-client-id %q, want %q", got, want)
		}
	})

	t.Run("proxy error", func(t *testing.T) {
		// Nothing listens on this port in the server pod: its inbound proxy answers.
		resp, err := a.httpClient(false).Get("http://" + target(9) + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("l5d-proxy-error") == "" {
			t.Fatalf("got %d, l5d-proxy-error %q", resp.StatusCode, resp.Header.Get("l5d-proxy-error"))
		}
		b.waitMetric(t, "response_total", map[string]string{"direction": "inbound", "status_code": "502",
			"classification": "failure", "error": "connection_refused"}, 1)
	})
}

// TestDrainOnSIGTERM stops each proxy while requests are in flight through it:
// every one of them must still complete.
func TestDrainOnSIGTERM(t *testing.T) {
	for _, side := range []string{"client", "server"} {
		t.Run(side+" proxy", func(t *testing.T) {
			m := newMesh(t, false)
			proxy := m.client.proxy
			if side == "server" {
				proxy = m.server.proxy
			}
			url := "http://" + m.server.Addr(httpPort) + "/slow?ms=1500"
			c := m.client.httpClient(false)
			const inFlight = 12
			var wg sync.WaitGroup
			errs := make(chan error, inFlight)
			for i := range inFlight {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := c.Get(url + "&i=" + strconv.Itoa(i))
					if err != nil {
						errs <- err
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errs <- fmt.Errorf("status %d", resp.StatusCode)
					}
				}()
			}
			// Let the requests reach the app, then stop the proxy mid-flight.
			m.server.waitMetric(t, "request_total", map[string]string{"direction": "inbound"}, inFlight)
			if err := proxy.Signal(sigterm); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("in-flight request lost during drain: %v", err)
			}
			select {
			case <-proxy.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("proxy did not exit after draining")
			}
			if err := proxy.Wait(); err != nil {
				t.Errorf("proxy exit: %v", err)
			}
		})
	}
}

func with(base map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}
