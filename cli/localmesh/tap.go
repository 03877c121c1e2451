package localmesh

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd/pkg/pki"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// TapIdentity is the tap service's identity: the only client the proxies'
// tap API serves (LINKERD2_PROXY_TAP_SVC_NAME). On the local mesh the CLI
// holds it, with a certificate from the mesh's issuer (TapTLS).
var TapIdentity = identityOf("tap", VizNamespace)

// TapPort is the proxies' control port, where the tap API is served.
const TapPort = 4190

// TapTarget is a pod to tap.
type TapTarget struct {
	Namespace, Name string
	// Addr is the pod's tap API; Identity its proxy's.
	Addr, Identity string
}

// TapTargets returns the pods of the mesh at stateDir that a resource
// names: kind "namespace" (every pod of ns), or "deployment"/"pod" (the
// workload name in ns; a local-mesh workload is both). Pods whose proxy
// runs without tap (started before tap existed) are refused with the
// advice to restart them.
func TapTargets(stateDir, kind, ns, name string) ([]TapTarget, error) {
	s, err := loadState(statePathOf(stateDir))
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, ErrNotUp
	}
	var targets []TapTarget
	var notEnabled []string
	for _, w := range s.Workloads {
		if w.Namespace != ns || (kind != "namespace" && w.Name != name) || len(w.Procs) == 0 {
			continue
		}
		if !tapEnabled(w) {
			notEnabled = append(notEnabled, w.Namespace+"/"+w.Name)
			continue
		}
		targets = append(targets, TapTarget{Namespace: w.Namespace, Name: w.Name, Identity: w.Identity,
			Addr: net.JoinHostPort(w.IP.String(), strconv.Itoa(TapPort))})
	}
	resource := kind + "/" + name
	if kind == "namespace" {
		resource = "namespace/" + ns
	}
	switch {
	case len(targets) > 0:
		return targets, nil
	case len(notEnabled) > 0:
		return nil, fmt.Errorf("no pods to tap for %s: tap not enabled on %v (started before tap was available); restart them (linkerd local down, up)", resource, notEnabled)
	default:
		if kind == "namespace" {
			return nil, fmt.Errorf("no pods to tap for %s: the local mesh at %s has no pods in namespace %s", resource, stateDir, ns)
		}
		return nil, fmt.Errorf("no pods to tap for %s: the local mesh at %s has no %s %s in namespace %s", resource, stateDir, kind, name, ns)
	}
}

// tapEnabled reports whether w's proxy serves the tap API.
func tapEnabled(w *Workload) bool {
	for _, e := range w.Procs[0].Env {
		if v, ok := strings.CutPrefix(e, proxyenv.TapSvcName+"="); ok && v != "" {
			return true
		}
	}
	return false
}

// TapTLS returns the client TLS configuration of the tap service for the
// mesh at stateDir: a short-lived certificate for TapIdentity issued by the
// mesh's issuer (readable by root only), and the mesh's trust anchors.
// serverName is the proxy's identity to verify.
func TapTLS(stateDir, serverName string) (*tls.Config, error) {
	dir := filepath.Join(stateDir, "identity")
	certPEM, err := os.ReadFile(filepath.Join(dir, "issuer", "crt.pem"))
	var keyPEM []byte
	if err == nil {
		keyPEM, err = os.ReadFile(filepath.Join(dir, "issuer", "key.pem"))
	}
	if errors.Is(err, os.ErrPermission) {
		return nil, errors.New("tapping the local mesh needs its issuer key: run as root")
	}
	if err != nil {
		return nil, fmt.Errorf("the local mesh's issuer: %w", err)
	}
	issuer, err := pki.LoadIssuer(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the local mesh's issuer: %w", err)
	}
	anchors, err := os.ReadFile(filepath.Join(dir, "ca-bundle.crt"))
	if err != nil {
		return nil, fmt.Errorf("read trust anchors: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(anchors) {
		return nil, errors.New("no trust anchors in the local mesh's bundle")
	}
	key, err := pki.GenerateKey()
	if err != nil {
		return nil, err
	}
	csrDER, err := pki.MakeCSR(key, TapIdentity)
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, err
	}
	leaf, err := issuer.SignCSR(csr, time.Hour, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("issue the tap certificate: %w", err)
	}
	chain := [][]byte{leaf.Raw}
	for _, c := range issuer.Chain() {
		chain = append(chain, c.Raw)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		ServerName:   serverName,
		RootCAs:      roots,
		Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: key, Leaf: leaf}},
	}, nil
}

// PodNames maps the pods' addresses to their names, for the mesh at
// stateDir (empty when it is not up).
func PodNames(stateDir string) map[string]string {
	names := map[string]string{}
	if s, err := loadState(statePathOf(stateDir)); err == nil && s != nil {
		for _, w := range s.Workloads {
			names[w.IP.String()] = w.Name
		}
	}
	return names
}
