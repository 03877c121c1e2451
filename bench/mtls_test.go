package bench

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/linkerd-go/linkerd/controller/identity/localtoken"
	"github.com/linkerd-go/linkerd/internal/testnet"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/pki"
)

// The benchmark's mesh: every certificate, ours or the baselines', is an
// ECDSA P-256 leaf signed by an issuer signed by a trust anchor, named like
// Linkerd's identities.
const (
	meshControlNS   = "linkerd"
	meshTrustDomain = "cluster.local"
	meshAppNS       = "bench"
	identityPort    = 8080 // of the identity service, in the control pod
	identityAdmin   = 9990
	certLifetime    = 24 * time.Hour
	tokenLifetime   = 24 * time.Hour
)

var (
	serverTLSName = identity.Name("server", meshAppNS, meshControlNS, meshTrustDomain)
	clientTLSName = identity.Name("client", meshAppNS, meshControlNS, meshTrustDomain)
	identitySvcID = identity.Name("linkerd-identity", meshControlNS, meshControlNS, meshTrustDomain)
)

// benchPKI is a trust anchor and the issuer it signed.
type benchPKI struct {
	anchor, issuer *pki.CA
}

// newBenchCA creates a fresh trust anchor and issuer.
func newBenchCA() (*benchPKI, error) {
	anchor, err := pki.NewCA(identity.TrustAnchorName(meshControlNS, meshTrustDomain), certLifetime)
	if err != nil {
		return nil, fmt.Errorf("trust anchor: %w", err)
	}
	issuer, err := anchor.NewIssuer(identity.IssuerName(meshControlNS, meshTrustDomain), certLifetime)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	return &benchPKI{anchor: anchor, issuer: issuer}, nil
}

// tlsFiles are the PEM files of one side of a TLS pair.
type tlsFiles struct {
	CA      string // the trust anchor
	Cert    string // the leaf followed by the issuer
	Key     string // the leaf's private key
	CertKey string // Cert followed by Key (haproxy's crt)
}

// writeLeaf issues a leaf certificate for name, as the identity service
// would for a proxy, and writes it with its key and the trust anchor into
// dir.
func writeLeaf(ca *benchPKI, name, dir string) (tlsFiles, error) {
	key, err := pki.GenerateKey()
	if err != nil {
		return tlsFiles{}, err
	}
	der, err := pki.MakeCSR(key, name)
	if err != nil {
		return tlsFiles{}, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return tlsFiles{}, fmt.Errorf("parse CSR for %s: %w", name, err)
	}
	leaf, err := ca.issuer.SignCSR(csr, certLifetime, pki.DefaultClockSkew)
	if err != nil {
		return tlsFiles{}, fmt.Errorf("sign %s: %w", name, err)
	}
	keyPEM, err := pki.EncodePrivateKeyPEM(key)
	if err != nil {
		return tlsFiles{}, err
	}
	certPEM := pki.EncodeCertificatesPEM(append([]*x509.Certificate{leaf}, ca.issuer.Chain()...)...)
	f := tlsFiles{
		CA:      filepath.Join(dir, "ca.pem"),
		Cert:    filepath.Join(dir, "cert.pem"),
		Key:     filepath.Join(dir, "key.pem"),
		CertKey: filepath.Join(dir, "certkey.pem"),
	}
	for path, b := range map[string][]byte{
		f.CA:      pki.EncodeCertificatesPEM(ca.anchor.Cert),
		f.Cert:    certPEM,
		f.Key:     keyPEM,
		f.CertKey: append(append([]byte(nil), certPEM...), keyPEM...),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return tlsFiles{}, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return f, nil
}

// identityPlane is a meshed control pod running the identity service in
// local-token mode, as in Linkerd: its own proxy gets its certificate from
// localhost and terminates the other proxies' mTLS in front of it.
type identityPlane struct {
	issuer     *pki.CA // signs the tap client's certificate
	pod        *testnet.Pod
	dir        string // readable by the proxies' uid: tokens, identity dirs
	anchorsPEM string
	tokens     *localtoken.Issuer
}

// startIdentityPlane creates the control pod in n and starts the identity
// service and its proxy there, for the rest of the test.
func startIdentityPlane(t testing.TB, n *testnet.Network, proxies linkerdPair, controllerBin string) (*identityPlane, error) {
	t.Helper()
	// Not t.TempDir: its parent is private and the proxies (uid 2102)
	// read their tokens here.
	dir, err := os.MkdirTemp("", "bench-identity-")
	if err != nil {
		return nil, fmt.Errorf("identity directory: %w", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("identity directory: %w", err)
	}
	ca, err := newBenchCA()
	if err != nil {
		return nil, err
	}
	issuerKey, err := pki.EncodePrivateKeyPEM(ca.issuer.Key)
	if err != nil {
		return nil, err
	}
	tokenKey, err := localtoken.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	anchors := pki.EncodeCertificatesPEM(ca.anchor.Cert)
	issuerDir := filepath.Join(dir, "issuer")
	for _, f := range []struct {
		path string
		b    []byte
	}{
		{filepath.Join(issuerDir, "crt.pem"), pki.EncodeCertificatesPEM(ca.issuer.Cert)},
		{filepath.Join(issuerDir, "key.pem"), issuerKey},
		{filepath.Join(dir, "ca-bundle.crt"), anchors},
		{filepath.Join(dir, "token.key"), tokenKey},
	} {
		if err := writePrivate(f.path, f.b, 0o600); err != nil {
			return nil, err
		}
	}
	cp := &identityPlane{issuer: ca.issuer, dir: dir, anchorsPEM: string(anchors),
		tokens: &localtoken.Issuer{Key: tokenKey, ControllerNamespace: meshControlNS, TrustDomain: meshTrustDomain}}
	cp.pod = n.AddPod("control")
	id := cp.pod.Start(t, testnet.ProcSpec{Name: "identity", Path: controllerBin, Args: []string{"identity",
		"-addr", fmt.Sprintf(":%d", identityPort), "-admin-addr", fmt.Sprintf(":%d", identityAdmin),
		"-issuer-dir", issuerDir, "-trust-anchors", filepath.Join(dir, "ca-bundle.crt"),
		"-token-mode", "local", "-local-token-key", filepath.Join(dir, "token.key"),
		"-identity-trust-domain", meshTrustDomain, "-controller-namespace", meshControlNS}})
	if err := waitTCP(cp.pod, id, addr("127.0.0.1", identityPort)); err != nil {
		return nil, fmt.Errorf("identity service: %w", err)
	}
	proxies.initPod(t, cp.pod)
	env, err := cp.proxyEnv("linkerd-identity", meshControlNS, addr("localhost", identityPort))
	if err != nil {
		return nil, err
	}
	proxy := cp.pod.Start(t, testnet.ProcSpec{
		Name: "linkerd-proxy-control", Path: proxies.proxyBin,
		Env:  append([]string{"LINKERD2_PROXY_LOG=warn"}, env...),
		User: &testnet.Credential{UID: linkerdProxyUID, GID: linkerdProxyUID},
	})
	if err := waitHTTP(cp.pod, proxy, "http://127.0.0.1:4191/ready"); err != nil {
		return nil, fmt.Errorf("control pod's proxy: %w", err)
	}
	return cp, nil
}

// writePrivate writes b to path, creating its directory.
func writePrivate(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// proxyEnv returns the identity configuration of a new proxy for the
// ServiceAccount sa in namespace ns, reaching the identity service at
// svcAddr: a fresh token and a fresh identity directory.
func (cp *identityPlane) proxyEnv(sa, ns, svcAddr string) ([]string, error) {
	token, err := cp.tokens.Issue(sa, ns, tokenLifetime)
	if err != nil {
		return nil, fmt.Errorf("token for %s.%s: %w", sa, ns, err)
	}
	tokenFile := filepath.Join(cp.dir, "tokens", sa+"."+ns)
	if err := writePrivate(tokenFile, token, 0o644); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cp.dir, "end-entity"), 0o755); err != nil {
		return nil, fmt.Errorf("identity directory: %w", err)
	}
	idDir, err := os.MkdirTemp(filepath.Join(cp.dir, "end-entity"), sa+"."+ns+"-") // one per proxy
	if err != nil {
		return nil, fmt.Errorf("identity directory: %w", err)
	}
	if err := os.Chown(idDir, linkerdProxyUID, linkerdProxyUID); err != nil {
		return nil, fmt.Errorf("identity directory: %w", err)
	}
	return []string{
		"LINKERD2_PROXY_IDENTITY_SVC_ADDR=" + svcAddr,
		"LINKERD2_PROXY_IDENTITY_SVC_NAME=" + identitySvcID,
		"LINKERD2_PROXY_IDENTITY_LOCAL_NAME=" + identity.Name(sa, ns, meshControlNS, meshTrustDomain),
		"LINKERD2_PROXY_IDENTITY_TOKEN_FILE=" + tokenFile,
		"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS=" + cp.anchorsPEM,
		"LINKERD2_PROXY_IDENTITY_DIR=" + idDir,
	}, nil
}

// sharedPlane is the control pod of our mTLS contenders: started by the
// first one that needs it, shared by the others.
type sharedPlane struct {
	proxies       linkerdPair
	controllerBin string

	once sync.Once
	cp   *identityPlane
	err  error

	dstOnce  sync.Once
	storeDir string
	dstErr   error

	policyOnce sync.Once
	policyErr  error
}

// get starts the control pod in n once.
func (s *sharedPlane) get(t testing.TB, n *testnet.Network) (*identityPlane, error) {
	t.Helper()
	s.once.Do(func() { s.cp, s.err = startIdentityPlane(t, n, s.proxies, s.controllerBin) })
	return s.cp, s.err
}

// linkerdMTLS is our proxy pair with identities: the proxies get their
// certificates from an identity service in a control pod, and the client's
// proxy knows the server's identity, so the hop between them is mTLS.
// HTTP/1.1 goes over HTTP/2 between the proxies; with name oursH1MTLSName
// (clientEnv turning the upgrade off) it stays HTTP/1.1, on pooled
// connections.
type linkerdMTLS struct {
	linkerdPair
	plane     *sharedPlane
	name      string   // oursMTLSName when empty
	clientEnv []string // more environment for the client's proxy
	// tap enables tap on both proxies (tapEnabled) and attaches a tap
	// client to both (tapAttached): what tap costs.
	tap tapMode
	// authz puts a Server and an AuthorizationPolicy in force on the
	// server's proxy (from a policy controller in the control pod).
	authz bool
	cp    *identityPlane // set by Prepare
}

func (l *linkerdMTLS) Name() string {
	if l.name != "" {
		return l.name
	}
	return oursMTLSName
}

func (l *linkerdMTLS) Prepare(t testing.TB, p pods) {
	t.Helper()
	l.linkerdPair.Prepare(t, p)
	cp, err := l.plane.get(t, p.client.Network())
	if err != nil {
		t.Fatalf("%s: control plane: %v", l.Name(), err)
	}
	l.cp = cp
	if l.authz {
		if err := l.plane.policyController(t); err != nil {
			t.Fatalf("%s: policy controller: %v", l.Name(), err)
		}
	}
}

func (l *linkerdMTLS) Start(t testing.TB, p pods) (endpoints, []int, error) {
	t.Helper()
	svc := addr(l.cp.pod.IP.String(), identityPort)
	clientEnv, err := l.cp.proxyEnv("client", meshAppNS, svc)
	if err != nil {
		return endpoints{}, nil, err
	}
	clientEnv = append(clientEnv, fmt.Sprintf("LINKERD2_PROXY_STATIC_ENDPOINTS=%s=%s", p.server.IP, serverTLSName))
	clientEnv = append(clientEnv, l.clientEnv...)
	serverEnv, err := l.cp.proxyEnv("server", meshAppNS, svc)
	if err != nil {
		return endpoints{}, nil, err
	}
	if l.authz {
		serverEnv = append(serverEnv, l.cp.policyEnv()...)
	}
	if l.tap != tapOff {
		clientEnv = append(clientEnv, "LINKERD2_PROXY_TAP_SVC_NAME="+tapTLSName)
		serverEnv = append(serverEnv, "LINKERD2_PROXY_TAP_SVC_NAME="+tapTLSName)
	}
	e, pids, client, err := l.startProxies(t, p, clientEnv, serverEnv)
	if err != nil {
		return endpoints{}, nil, err
	}
	if err := checkMTLS(p.client, client, p.server.IP.String()); err != nil {
		return endpoints{}, nil, err
	}
	if l.authz {
		if err := waitAuthorized(p, e.HTTP); err != nil {
			return endpoints{}, nil, err
		}
	}
	if l.tap == tapAttached {
		for _, pod := range []struct {
			pod *testnet.Pod
			id  string
		}{{p.client, clientTLSName}, {p.server, serverTLSName}} {
			if err := attachTap(t, l.cp, pod.pod, pod.id); err != nil {
				return endpoints{}, nil, err
			}
		}
	}
	return e, pids, nil
}

// checkMTLS scrapes the proxy in the client pod once and fails unless the
// connections it opened to the server (at least one, for waitHTTP's
// request) were all mTLS.
func checkMTLS(pod *testnet.Pod, proc *testnet.Proc, serverIP string) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tr := &http.Transport{DialContext: pod.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:4191/metrics", nil)
	if err != nil {
		return fmt.Errorf("scrape metrics: %w", err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("scrape metrics: %w%s", err, procOutput(proc))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scrape metrics: status %s", resp.Status)
	}
	return outboundTLS(resp.Body, serverIP)
}

// outboundTLS checks a proxy's metrics: tcp_open_total must count
// connections the proxy opened outbound to serverIP with tls="true", and
// none without TLS to anywhere.
func outboundTLS(r io.Reader, serverIP string) error {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return fmt.Errorf("parse metrics: %w", err)
	}
	var tls, plain float64
	var plainLabels []string
	if fam := fams["tcp_open_total"]; fam != nil {
		for _, m := range fam.GetMetric() {
			labels := make(map[string]string)
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			// peer="src" series are the application's own (plaintext,
			// loopback) connections into the proxy.
			if labels["direction"] != "outbound" || labels["peer"] != "dst" {
				continue
			}
			v := m.GetCounter().GetValue()
			if labels["tls"] == "true" {
				if labels["target_ip"] == serverIP {
					tls += v
				}
			} else if v > 0 {
				plain += v
				plainLabels = append(plainLabels, fmt.Sprint(labels))
			}
		}
	}
	switch {
	case plain > 0:
		return fmt.Errorf("not mTLS: %.0f outbound connections without TLS: %s", plain, strings.Join(plainLabels, "; "))
	case tls == 0:
		return fmt.Errorf(`not mTLS: no outbound connection to %s with tls="true" in tcp_open_total`, serverIP)
	}
	return nil
}

// nginxConf is an nginx pair side: one worker, HTTP/1.1 keep-alive to the
// upstream, an h2c listener and gRPC upstream for gRPC; in an mTLS pair, TLS
// 1.3 and client certificates between the proxies (ServerTLS on the server
// side, ClientTLS on the client side), with sessions reused.
var nginxConf = template.Must(template.New("nginx").Parse(`
user root;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events {
  worker_connections 4096;
}
http {
  access_log off;
  client_body_temp_path {{.Dir}}/body;
  proxy_temp_path {{.Dir}}/proxy;
  fastcgi_temp_path {{.Dir}}/fastcgi;
  uwsgi_temp_path {{.Dir}}/uwsgi;
  scgi_temp_path {{.Dir}}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream http_up {
    server {{.HTTPUpstream}};
    keepalive 64;
    keepalive_requests 1000000;
  }
  upstream grpc_up {
    server {{.GRPCUpstream}};
    keepalive 64;
    keepalive_requests 1000000;
  }
{{- if .ServerTLS}}
  ssl_certificate {{.TLS.Cert}};
  ssl_certificate_key {{.TLS.Key}};
  ssl_protocols TLSv1.3;
  ssl_client_certificate {{.TLS.CA}};
  ssl_verify_client on;
  ssl_verify_depth 2;
  ssl_session_cache shared:SSL:1m;
{{- end}}
{{- if .ClientTLS}}
  proxy_ssl_certificate {{.TLS.Cert}};
  proxy_ssl_certificate_key {{.TLS.Key}};
  proxy_ssl_trusted_certificate {{.TLS.CA}};
  proxy_ssl_verify on;
  proxy_ssl_verify_depth 2;
  proxy_ssl_name {{.PeerName}};
  proxy_ssl_server_name on;
  proxy_ssl_protocols TLSv1.3;
  proxy_ssl_session_reuse on;
  grpc_ssl_certificate {{.TLS.Cert}};
  grpc_ssl_certificate_key {{.TLS.Key}};
  grpc_ssl_trusted_certificate {{.TLS.CA}};
  grpc_ssl_verify on;
  grpc_ssl_verify_depth 2;
  grpc_ssl_name {{.PeerName}};
  grpc_ssl_server_name on;
  grpc_ssl_protocols TLSv1.3;
  grpc_ssl_session_reuse on;
{{- end}}
  server {
    listen {{.HTTPListen}}{{if .ServerTLS}} ssl{{end}};
    location / {
      proxy_pass http{{if .ClientTLS}}s{{end}}://http_up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  server {
    listen {{.GRPCListen}}{{if .ServerTLS}} ssl{{end}} http2;
    location / {
      grpc_pass grpc{{if .ClientTLS}}s{{end}}://grpc_up;
    }
  }
}
`))

// haproxyMTLSConf is a haproxy mTLS pair side: as haproxyConf, with TLS
// 1.3, client certificates and HTTP/2 (ALPN h2) between the proxies for
// both HTTP and gRPC, as a mesh does.
var haproxyMTLSConf = template.Must(template.New("haproxy-mtls").Parse(`
global
  nbthread 1
  maxconn 4096
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  http-reuse always
frontend http_in
  bind {{.HTTPListen}}{{if .ServerTLS}} ssl crt {{.TLS.CertKey}} ca-file {{.TLS.CA}} verify required alpn h2,http/1.1{{end}}
  default_backend http_up
backend http_up
  server up {{.HTTPUpstream}}{{if .ClientTLS}} ssl crt {{.TLS.CertKey}} ca-file {{.TLS.CA}} verify required verifyhost {{.PeerName}} sni str({{.PeerName}}) alpn h2{{end}}
frontend grpc_in
  bind {{.GRPCListen}}{{if .ServerTLS}} ssl crt {{.TLS.CertKey}} ca-file {{.TLS.CA}} verify required alpn h2{{else}} proto h2{{end}}
  default_backend grpc_up
backend grpc_up
  server up {{.GRPCUpstream}}{{if .ClientTLS}} ssl crt {{.TLS.CertKey}} ca-file {{.TLS.CA}} verify required verifyhost {{.PeerName}} sni str({{.PeerName}}) alpn h2{{else}} proto h2{{end}}
`))

func nginxMTLSPair() confPair {
	c := nginxPair()
	c.name, c.conf, c.mtls = "nginx-mtls", nginxConf, true
	return c
}

func haproxyMTLSPair() confPair {
	c := haproxyPair()
	c.name, c.conf, c.mtls = "haproxy-mtls", haproxyMTLSConf, true
	return c
}
