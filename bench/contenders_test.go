package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"text/template"
	"time"

	"github.com/linkerd-go/linkerd/internal/testnet"
)

// Ports of the fortio server in every server pod, and of the nginx and
// haproxy pairs.
const (
	httpPort        = 8080
	grpcPort        = 8079
	clientHTTPPort  = 15001 // proxy in the client pod, HTTP/1.1
	serverHTTPPort  = 15002 // proxy in the server pod, HTTP/1.1
	clientGRPCPort  = 15003 // proxy in the client pod, h2c
	serverGRPCPort  = 15004 // proxy in the server pod, h2c
	proxyCPU        = "0"
	loadCPU         = "1"
	readyTimeout    = 30 * time.Second
	linkerdProxyUID = 2102
)

// pods is a contender's pair of pods: the load generator runs in client,
// the fortio server in server.
type pods struct {
	client, server *testnet.Pod
}

// directEndpoints are the fortio server's addresses in the server pod.
func (p pods) directEndpoints() endpoints {
	return endpoints{
		HTTP: "http://" + p.server.Addr(httpPort) + "/",
		GRPC: p.server.Addr(grpcPort),
	}
}

// contender is one configuration under comparison.
type contender interface {
	// Name labels the contender in the results; it is also the prefix of
	// its pods' names.
	Name() string
	// Prepare runs once, after the pods exist and the fortio server runs,
	// before the first Start (for example to write iptables rules).
	Prepare(t testing.TB, p pods)
	// Start starts fresh proxies for one repetition (t's cleanup stops
	// them), waits until they serve, and returns where the load generator
	// sends its load and the pids of the proxy processes to measure (none
	// for a direct connection). An error leaves this contender out of the
	// repetition without stopping the others.
	Start(t testing.TB, p pods) (endpoints, []int, error)
}

// pinned returns a taskset command line that runs path with args on cpu.
func pinned(cpu, path string, args ...string) (string, []string) {
	return "taskset", append([]string{"-c", cpu, path}, args...)
}

// startPinned starts a long-running process on cpu in pod.
func startPinned(t testing.TB, pod *testnet.Pod, cpu string, spec testnet.ProcSpec) *testnet.Proc {
	t.Helper()
	if spec.Name == "" {
		spec.Name = filepath.Base(spec.Path)
	}
	if callgrindDir != "" && cpu == proxyCPU {
		// TestCallgrind: the proxies run under callgrind (Go programs need
		// the runtime's preemption signals off under valgrind).
		spec.Path, spec.Args = underCallgrind(spec.Path, spec.Args)
		// Our proxy exits through /shutdown: a signal trips callgrind
		// (vgCallgrind_post_signal) in a Go program.
		spec.Env = append(spec.Env, "GODEBUG=asyncpreemptoff=1", "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED=true")
		spec.GracePeriod = time.Minute // exiting under valgrind is slow, and writes the profile
	}
	spec.Path, spec.Args = pinned(cpu, spec.Path, spec.Args...)
	return pod.Start(t, spec)
}

// direct sends the load straight to the fortio server.
type direct struct{}

func (direct) Name() string             { return "direct" }
func (direct) Prepare(testing.TB, pods) {}

func (direct) Start(_ testing.TB, p pods) (endpoints, []int, error) {
	return p.directEndpoints(), nil, nil
}

// linkerdPair is our proxy in both pods, with linkerd-init's iptables rules
// redirecting the client's connections to the fortio server through them.
type linkerdPair struct {
	proxyBin, initBin string
}

func (linkerdPair) Name() string { return "linkerd-go" }

func (l linkerdPair) Prepare(t testing.TB, p pods) {
	t.Helper()
	l.initPod(t, p.client)
	l.initPod(t, p.server)
}

// initPod writes linkerd-init's iptables rules in pod.
func (l linkerdPair) initPod(t testing.TB, pod *testnet.Pod) {
	t.Helper()
	pod.Exec(t, l.initBin,
		"--incoming-proxy-port", "4143",
		"--outgoing-proxy-port", "4140",
		"--proxy-uid", strconv.Itoa(linkerdProxyUID),
		"--inbound-ports-to-ignore", "4190,4191")
}

func (l linkerdPair) Start(t testing.TB, p pods) (endpoints, []int, error) {
	t.Helper()
	e, pids, _, err := l.startProxies(t, p, nil, nil)
	return e, pids, err
}

// startProxies starts a proxy in the client pod, with the extra environment
// clientEnv, and one in the server pod, with serverEnv; it waits until they
// serve and the client's traffic reaches fortio through them. It also
// returns the client's proxy process.
func (l linkerdPair) startProxies(t testing.TB, p pods, clientEnv, serverEnv []string) (endpoints, []int, *testnet.Proc, error) {
	t.Helper()
	var pids []int
	var clientProxy *testnet.Proc
	for _, side := range []struct {
		pod *testnet.Pod
		env []string
	}{{p.client, clientEnv}, {p.server, serverEnv}} {
		pod := side.pod
		proc := startPinned(t, pod, proxyCPU, testnet.ProcSpec{
			Name: "linkerd-proxy-" + pod.Name,
			Path: l.proxyBin,
			Env:  append([]string{"LINKERD2_PROXY_LOG=warn"}, side.env...),
			User: &testnet.Credential{UID: linkerdProxyUID, GID: linkerdProxyUID},
		})
		if pod == p.client {
			clientProxy = proc
		}
		if err := waitHTTP(pod, proc, "http://127.0.0.1:4191/ready"); err != nil {
			return endpoints{}, nil, nil, err
		}
		pids = append(pids, proc.Pid())
	}
	// The client's traffic to the server's own address is redirected
	// through both proxies.
	e := p.directEndpoints()
	if err := waitHTTP(p.client, nil, e.HTTP); err != nil {
		return endpoints{}, nil, nil, fmt.Errorf("through the proxies: %w", err)
	}
	return e, pids, clientProxy, nil
}

// confPair is a pair of proxies configured by templated files: one in the
// client pod forwarding to one in the server pod, forwarding to fortio.
type confPair struct {
	name string
	// conf is the template of both configuration files, executed with
	// confData.
	conf *template.Template
	// command returns the program and arguments that run the proxy with
	// the configuration file conf, in the foreground, from directory dir.
	command func(conf, dir string) (string, []string)
	// mtls makes the pair talk mTLS between the two proxies: the server
	// side's template gets ServerTLS, the client side's ClientTLS, and
	// both a certificate of their own (see tlsFiles).
	mtls bool
}

// confData fills a confPair's template.
type confData struct {
	Dir                        string // a private writable directory
	HTTPListen, GRPCListen     string
	HTTPUpstream, GRPCUpstream string
	// ServerTLS: the listeners require mTLS (server side of an mTLS pair).
	// ClientTLS: the upstreams are reached over mTLS (client side).
	ServerTLS, ClientTLS bool
	// TLS is this side's certificate files when either is set; PeerName
	// is the name the client side verifies in the server's certificate.
	TLS      tlsFiles
	PeerName string
}

func (c confPair) Name() string           { return c.name }
func (confPair) Prepare(testing.TB, pods) {}

func (c confPair) Start(t testing.TB, p pods) (endpoints, []int, error) {
	t.Helper()
	sides := []struct {
		pod  *testnet.Pod
		data confData
	}{
		{p.server, confData{
			HTTPListen: p.server.Addr(serverHTTPPort), GRPCListen: p.server.Addr(serverGRPCPort),
			HTTPUpstream: addr("127.0.0.1", httpPort), GRPCUpstream: addr("127.0.0.1", grpcPort),
			ServerTLS: c.mtls,
		}},
		{p.client, confData{
			HTTPListen: addr("127.0.0.1", clientHTTPPort), GRPCListen: addr("127.0.0.1", clientGRPCPort),
			HTTPUpstream: p.server.Addr(serverHTTPPort), GRPCUpstream: p.server.Addr(serverGRPCPort),
			ClientTLS: c.mtls, PeerName: serverTLSName,
		}},
	}
	var ca *benchPKI
	if c.mtls {
		var err error
		if ca, err = newBenchCA(); err != nil {
			return endpoints{}, nil, err
		}
	}
	var pids []int
	for _, s := range sides {
		dir := t.TempDir()
		s.data.Dir = dir
		if c.mtls {
			name := serverTLSName
			if s.pod == p.client {
				name = clientTLSName
			}
			files, err := writeLeaf(ca, name, dir)
			if err != nil {
				return endpoints{}, nil, err
			}
			s.data.TLS = files
		}
		conf := filepath.Join(dir, c.name+".conf")
		writeTemplate(t, conf, c.conf, s.data)
		path, args := c.command(conf, dir)
		proc := startPinned(t, s.pod, proxyCPU, testnet.ProcSpec{
			Name: c.name + "-" + s.pod.Name, Path: path, Args: args, Dir: dir,
		})
		for _, a := range []string{s.data.HTTPListen, s.data.GRPCListen} {
			if err := waitTCP(s.pod, proc, a); err != nil {
				return endpoints{}, nil, err
			}
		}
		pids = append(pids, proc.Pid())
	}
	e := endpoints{
		HTTP: "http://" + addr("127.0.0.1", clientHTTPPort) + "/",
		GRPC: addr("127.0.0.1", clientGRPCPort),
	}
	if err := waitHTTP(p.client, nil, e.HTTP); err != nil {
		return endpoints{}, nil, fmt.Errorf("through the proxies: %w", err)
	}
	return e, pids, nil
}

func addr(host string, port int) string { return host + ":" + strconv.Itoa(port) }

// writeTemplate executes tmpl with data into the file path.
func writeTemplate(t testing.TB, path string, tmpl *template.Template, data any) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
	if err := tmpl.Execute(f, data); err != nil {
		f.Close()
		t.Fatalf("write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// haproxyConf is a haproxy pair side: one thread, HTTP/1.1 with connection
// reuse for HTTP, h2c on both sides for gRPC.
var haproxyConf = template.Must(template.New("haproxy").Parse(`
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  http-reuse always
frontend http_in
  bind {{.HTTPListen}}
  default_backend http_up
backend http_up
  server up {{.HTTPUpstream}}
frontend grpc_in
  bind {{.GRPCListen}} proto h2
  default_backend grpc_up
backend grpc_up
  server up {{.GRPCUpstream}} proto h2
`))

func nginxPair() confPair {
	return confPair{name: "nginx", conf: nginxConf, command: func(conf, dir string) (string, []string) {
		global := "daemon off;"
		if callgrindDir != "" {
			global += " master_process off;" // one process for callgrind to count
		}
		return "nginx", []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf, "-g", global}
	}}
}

func haproxyPair() confPair {
	return confPair{name: "haproxy", conf: haproxyConf, command: func(conf, _ string) (string, []string) {
		return "haproxy", []string{"-db", "-f", conf}
	}}
}

// waitTCP waits until addr accepts connections from inside pod; it gives up
// early if proc (when not nil) exits.
func waitTCP(pod *testnet.Pod, proc *testnet.Proc, a string) error {
	ctx, cancel := watchProc(proc, readyTimeout)
	defer cancel()
	if err := pod.WaitTCP(ctx, a); err != nil {
		return fmt.Errorf("%w%s", err, procOutput(proc))
	}
	return nil
}

// waitHTTP waits until a GET of url from inside pod answers 200; it gives
// up early if proc (when not nil) exits.
func waitHTTP(pod *testnet.Pod, proc *testnet.Proc, url string) error {
	start := time.Now()
	ctx, cancel := watchProc(proc, readyTimeout)
	defer cancel()
	tr := &http.Transport{DialContext: pod.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	var last error
	for ctx.Err() == nil {
		last = getOK(ctx, client, url)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: GET %s: not ready after %v: %w%s", pod.Name, url, time.Since(start).Round(time.Millisecond), last, procOutput(proc))
}

// getOK GETs url and returns an error unless it answers 200.
func getOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("new request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// watchProc returns a context that ends after timeout or when proc exits.
func watchProc(proc *testnet.Proc, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	if proc != nil {
		// Ends when the caller cancels ctx, at the latest.
		go func() {
			select {
			case <-proc.Done():
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

// procOutput formats proc's output for an error message.
func procOutput(proc *testnet.Proc) string {
	if proc == nil {
		return ""
	}
	select {
	case <-proc.Done():
		return fmt.Sprintf("\n%s exited (%v); output:\n%s", proc.Name, proc.Wait(), proc.Output())
	default:
		return fmt.Sprintf("\n%s output:\n%s", proc.Name, proc.Output())
	}
}
