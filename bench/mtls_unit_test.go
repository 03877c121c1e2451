package bench

import (
	"crypto/x509"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/pkg/pki"
)

func TestComparisons(t *testing.T) {
	tests := []struct {
		name    string
		configs []string
		want    []comparison
	}{
		{"plain only", []string{"direct", "linkerd-go", "nginx", "haproxy"},
			[]comparison{{ours: "linkerd-go", baselines: []string{"nginx", "haproxy"}}}},
		{"like with like", []string{"direct", "linkerd-go", "nginx", "linkerd-go-mtls", "nginx-mtls", "haproxy-mtls"},
			[]comparison{
				{ours: "linkerd-go", baselines: []string{"nginx"}},
				{ours: "linkerd-go-mtls", baselines: []string{"nginx-mtls", "haproxy-mtls"}},
			}},
		{"mtls only", []string{"direct", "linkerd-go-mtls", "nginx-mtls"},
			[]comparison{{ours: "linkerd-go-mtls", baselines: []string{"nginx-mtls"}}}},
		{"no ours", []string{"direct", "nginx", "nginx-mtls"}, nil},
		{"ours without baseline", []string{"linkerd-go-mtls", "nginx"},
			[]comparison{{ours: "linkerd-go-mtls"}}},
		{"our variants are no baselines", []string{"linkerd-go-mtls", "linkerd-go-h1-mtls", "linkerd-go-lb3-mtls", "nginx-mtls"},
			[]comparison{{ours: "linkerd-go-mtls", baselines: []string{"nginx-mtls"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := comparisons(tt.configs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("comparisons(%v) = %+v, want %+v", tt.configs, got, tt.want)
			}
		})
	}
}

func TestOutboundTLS(t *testing.T) {
	const (
		src      = `tcp_open_total{direction="outbound",peer="src",target_addr="10.0.0.3:8080",tls="no_identity",no_tls_reason="loopback"} 1` + "\n"
		dstTLS   = `tcp_open_total{direction="outbound",peer="dst",target_addr="10.0.0.3:8080",target_ip="10.0.0.3",tls="true",server_id="server"} 2` + "\n"
		dstPlain = `tcp_open_total{direction="outbound",peer="dst",target_addr="10.0.0.3:8080",tls="no_identity",no_tls_reason="not_provided_by_service_discovery"} 1` + "\n"
		inbound  = `tcp_open_total{direction="inbound",peer="src",tls="no_identity"} 5` + "\n"
		identity = `tcp_open_total{direction="outbound",peer="dst",target_addr="10.0.0.9:8080",target_ip="10.0.0.9",tls="true"} 1` + "\n"
		typ      = "# TYPE tcp_open_total counter\n"
	)
	tests := []struct {
		name    string
		metrics string
		wantErr string // "" for no error
	}{
		{"mTLS", typ + src + dstTLS + inbound, ""},
		{"plaintext to the server", typ + src + dstTLS + dstPlain, "without TLS"},
		{"only plaintext", typ + src + dstPlain, "without TLS"},
		{"no connection to the server", typ + src + inbound, `no outbound connection to 10.0.0.3 with tls="true"`},
		{"mTLS elsewhere only", typ + src + identity, `no outbound connection to 10.0.0.3 with tls="true"`},
		{"no metric", "", `no outbound connection to 10.0.0.3 with tls="true"`},
		{"unparsable", "tcp_open_total{", "parse metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := outboundTLS(strings.NewReader(tt.metrics), "10.0.0.3")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("outboundTLS: %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("outboundTLS: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestWriteLeaf(t *testing.T) {
	ca, err := newBenchCA()
	if err != nil {
		t.Fatal(err)
	}
	files, err := writeLeaf(ca, serverTLSName, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	read := func(path string) []*x509.Certificate {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := pki.DecodeCertificatesPEM(b)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return certs
	}
	chain, anchors := read(files.Cert), read(files.CA)
	if len(chain) != 2 || len(anchors) != 1 {
		t.Fatalf("%d certificates in cert.pem, %d in ca.pem; want 2 (leaf, issuer) and 1", len(chain), len(anchors))
	}
	roots := x509.NewCertPool()
	roots.AddCert(anchors[0])
	inter := x509.NewCertPool()
	inter.AddCert(chain[1])
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: serverTLSName, Roots: roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("leaf does not verify for %v as %s: %v", usage, serverTLSName, err)
		}
	}
	certKey, err := os.ReadFile(files.CertKey)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(certKey), "PRIVATE KEY") || strings.Count(string(certKey), "BEGIN CERTIFICATE") != 2 {
		t.Errorf("certkey.pem is not the chain followed by the key:\n%s", certKey)
	}
}
