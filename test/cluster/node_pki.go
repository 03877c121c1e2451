package cluster

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// nodePKI is the single node's certificates, as files under its dir.
type nodePKI struct {
	CACert, CAKey           string // the cluster CA (also signs kubelet CSRs)
	ServingCert, ServingKey string // kube-apiserver
	SAPublicKey, SAKey      string // service-account tokens
	// KubeletClientCert/Key authenticate the API server to the kubelet.
	KubeletClientCert, KubeletClientKey string

	CAPEM []byte
	// clients are the client credentials by user: the components'
	// kubeconfigs embed them.
	clients map[string]clientCred
}

type clientCred struct{ certPEM, keyPEM []byte }

// Users of the node's kubeconfigs, and their certificate subjects.
const (
	userAdmin             = "admin"
	userKubelet           = "kubelet"
	userScheduler         = "kube-scheduler"
	userControllerManager = "kube-controller-manager"
	userKubeProxy         = "kube-proxy"
)

// writeNodePKI generates the node's CA, certificates and service-account
// keys under dir.
func writeNodePKI(dir string) (*nodePKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki dir: %w", err)
	}
	ca, err := newCA("l5d-test-node-ca")
	if err != nil {
		return nil, err
	}
	p := &nodePKI{
		CACert:            filepath.Join(dir, "ca.crt"),
		CAKey:             filepath.Join(dir, "ca.key"),
		ServingCert:       filepath.Join(dir, "apiserver.crt"),
		ServingKey:        filepath.Join(dir, "apiserver.key"),
		SAPublicKey:       filepath.Join(dir, "sa.pub"),
		SAKey:             filepath.Join(dir, "sa.key"),
		KubeletClientCert: filepath.Join(dir, "apiserver-kubelet-client.crt"),
		KubeletClientKey:  filepath.Join(dir, "apiserver-kubelet-client.key"),
		CAPEM:             ca.certPEM,
		clients:           map[string]clientCred{},
	}
	files := map[string][]byte{p.CACert: ca.certPEM, p.CAKey: ca.keyPEM}

	servingCert, servingKey, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.ParseIP(NodeIP), net.ParseIP(KubernetesServiceIP)},
		DNSNames:    append([]string{NodeName}, apiServerSANs...),
	})
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	files[p.ServingCert], files[p.ServingKey] = servingCert, servingKey

	kcCert, kcKey, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("kubelet client certificate: %w", err)
	}
	files[p.KubeletClientCert], files[p.KubeletClientKey] = kcCert, kcKey

	for user, subject := range map[string]pkix.Name{
		userAdmin:             {CommonName: "l5d-test-admin", Organization: []string{"system:masters"}},
		userKubelet:           {CommonName: "system:node:" + NodeName, Organization: []string{"system:nodes"}},
		userScheduler:         {CommonName: "system:kube-scheduler"},
		userControllerManager: {CommonName: "system:kube-controller-manager"},
		userKubeProxy:         {CommonName: "system:kube-proxy"},
	} {
		cert, key, err := ca.issue(&x509.Certificate{Subject: subject, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			return nil, fmt.Errorf("%s certificate: %w", user, err)
		}
		p.clients[user] = clientCred{certPEM: cert, keyPEM: key}
	}

	saPriv, saPub, err := serviceAccountKeys()
	if err != nil {
		return nil, err
	}
	files[p.SAKey], files[p.SAPublicKey] = saPriv, saPub
	if err := writeFiles(files); err != nil {
		return nil, err
	}
	return p, nil
}
