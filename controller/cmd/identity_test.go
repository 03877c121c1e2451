package cmd

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/linkerd-go/linkerd/controller/identity/localtoken"
	"github.com/linkerd-go/linkerd/internal/syncbuf"
	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/pki"
	identityv1 "github.com/linkerd-go/linkerd/proto/identity/v1"
)

// material is an issuer directory, trust anchors and a local token key on
// disk.
type material struct {
	dir, issuerDir, anchors, tokenKey string
	anchor, issuer                    *pki.CA
	key                               []byte
}

func newMaterial(t *testing.T, writeIssuer bool) *material {
	t.Helper()
	m := &material{dir: t.TempDir()}
	m.issuerDir = filepath.Join(m.dir, "issuer")
	m.anchors = filepath.Join(m.dir, "ca-bundle.crt")
	m.tokenKey = filepath.Join(m.dir, "token.key")
	if err := os.Mkdir(m.issuerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var err error
	if m.anchor, err = pki.NewCA(identity.TrustAnchorName("linkerd", "cluster.local"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if m.issuer, err = m.anchor.NewIssuer(identity.IssuerName("linkerd", "cluster.local"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if m.key, err = localtoken.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, m.anchors, pki.EncodeCertificatesPEM(m.anchor.Cert))
	mustWrite(t, m.tokenKey, m.key)
	if writeIssuer {
		m.writeIssuer(t)
	}
	return m
}

func (m *material) writeIssuer(t *testing.T) {
	t.Helper()
	keyPEM, err := pki.EncodePrivateKeyPEM(m.issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(m.issuerDir, "key.pem"), keyPEM)
	mustWrite(t, filepath.Join(m.issuerDir, "crt.pem"), pki.EncodeCertificatesPEM(m.issuer.Cert))
}

func (m *material) args() []string {
	return []string{
		"-addr=127.0.0.1:0", "-admin-addr", "127.0.0.1:0",
		"-issuer-dir=" + m.issuerDir, "--trust-anchors=" + m.anchors,
		"-token-mode=local", "-local-token-key", m.tokenKey,
		"-identity-trust-domain=cluster.local", "-controller-namespace=linkerd",
		"-identity-issuance-lifetime=30m", "-identity-clock-skew-allowance=5s",
		"-log-level=debug", "-log-format=json",
	}
}

// startIdentity parses args as the identity command does and runs the
// component until the test ends.
func startIdentity(t *testing.T, args []string) *identityComponent {
	t.Helper()
	o := &identityOptions{}
	parseFlags(t, o.addFlags, args...)
	o.pollInterval = 20 * time.Millisecond
	c, err := newIdentityComponent(o, quiet)
	if err != nil {
		t.Fatal(err)
	}
	startComponent(t, c)
	return c
}

func TestIdentityComponent(t *testing.T) {
	m := newMaterial(t, true)
	c := startIdentity(t, m.args())
	admin := "http://" + c.adminLis.Addr().String()
	waitReady(t, admin)
	if code, _ := httpGet(t, admin+"/live"); code != http.StatusOK {
		t.Fatalf("/live = %d", code)
	}

	conn, err := grpc.NewClient(c.lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	name := identity.Name("web", "emojivoto", "linkerd", "cluster.local")
	tok, err := (&localtoken.Issuer{Key: m.key}).Issue("web", "emojivoto", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.GenerateKey()
	csr, err := pki.MakeCSR(key, name)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := identityv1.NewIdentityClient(conn).Certify(context.Background(), &identityv1.CertifyRequest{Identity: name, Token: tok, CsrDer: csr})
	if err != nil {
		t.Fatalf("Certify: %v", err)
	}
	leaf, err := x509.ParseCertificate(resp.GetLeafDer())
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	for _, der := range resp.GetChainDer() {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	if err := pki.VerifyChain(leaf, chain, []*x509.Certificate{m.anchor.Cert}); err != nil {
		t.Fatal(err)
	}
	// The lifetime and skew flags took effect.
	if d := leaf.NotAfter.Sub(start.Add(30 * time.Minute)); d < -3*time.Second || d > 3*time.Second {
		t.Errorf("NotAfter %s, want about %s", leaf.NotAfter, start.Add(30*time.Minute))
	}
	if d := leaf.NotBefore.Sub(start.Add(-5 * time.Second)); d < -3*time.Second || d > 3*time.Second {
		t.Errorf("NotBefore %s, want about %s", leaf.NotBefore, start.Add(-5*time.Second))
	}

	code, metrics := httpGet(t, admin+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		"identity_cert_issued_total 1",
		`identity_cert_refused_total{reason="token_rejected"} 0`,
		`identity_issuer_reload_total{result="success"} 1`,
		"identity_issuer_expiry_timestamp_seconds ",
		"go_goroutines ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestIdentityBecomesReady(t *testing.T) {
	m := newMaterial(t, false)
	c := startIdentity(t, m.args())
	admin := "http://" + c.adminLis.Addr().String()
	if code, _ := httpGet(t, admin+"/ready"); code != http.StatusServiceUnavailable {
		t.Fatalf("/ready without an issuer = %d, want 503", code)
	}
	if code, _ := httpGet(t, admin+"/live"); code != http.StatusOK {
		t.Fatalf("/live = %d, want 200 even without an issuer", code)
	}
	m.writeIssuer(t)
	waitReady(t, admin)
}

func TestExecute(t *testing.T) {
	m := newMaterial(t, true)
	tests := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"unknown flag", []string{"identity", "-bogus"}, 2, "flag provided but not defined"},
		{"help", []string{"identity", "-h"}, 0, "-identity-trust-domain"},
		{"extra argument", []string{"identity", "extra"}, 2, "unexpected arguments"},
		{"bad token mode", append(m.args(), "-token-mode=nope"), 2, "unknown -token-mode"},
		{"local without key", []string{"identity", "-token-mode=local"}, 2, "needs -local-token-key"},
		{"missing key file", []string{"identity", "-token-mode=local", "-local-token-key=" + filepath.Join(m.dir, "missing")}, 1, "read local token key"},
		{"bad log level", append(m.args(), "-log-level=loud"), 2, "unknown -log-level"},
		{"bad log format", append(m.args(), "-log-format=xml"), 2, "unknown -log-format"},
		{"bad scheme", append(m.args(), "-identity-scheme=x"), 2, "unknown identity scheme"},
		{"bad trust domain", append(m.args(), "-identity-trust-domain=Bad..domain"), 2, "trust domain"},
		{"bad duration", append(m.args(), "-identity-issuance-lifetime=forever"), 2, "invalid value"},
		{"missing kubeconfig", []string{"identity", "-kubeconfig=" + filepath.Join(m.dir, "missing")}, 1, "kubernetes client configuration"},
		{"address in use", nil, 1, "listen on -addr"},
		{"unknown command", []string{"nope"}, 1, "unknown command"},
	}
	busy := startIdentity(t, m.args())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args == nil { // address in use
				args = append([]string{"identity"}, m.args()...)
				args = append(args, "-addr="+busy.lis.Addr().String())
			} else if args[0] != "identity" && args[0] != "nope" {
				args = append([]string{"identity"}, args...)
			}
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), args, Env{Stdout: &stdout, Stderr: &stderr})
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.inStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.inStderr, stderr.String())
			}
		})
	}
}

// TestExecuteGracefulStop runs the whole command and cancels its context,
// as SIGTERM does in main.
func TestExecuteGracefulStop(t *testing.T) {
	m := newMaterial(t, true)
	var stderr syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Execute(ctx, append([]string{"identity"}, m.args()...), Env{Stdout: io.Discard, Stderr: &stderr})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "identity service started") {
		if time.Now().After(deadline) {
			t.Fatalf("not started within 10s:\n%s", stderr.String())
		}
		select {
		case code := <-done:
			t.Fatalf("exited early with %d:\n%s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d after cancellation:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop within 15s")
	}
	if !strings.Contains(stderr.String(), `"msg":"shutting down"`) {
		t.Errorf("no shutdown log line (JSON format requested):\n%s", stderr.String())
	}
}

func TestLogFlags(t *testing.T) {
	tests := []struct {
		level   string
		enabled slog.Level
		off     slog.Level
	}{
		{"trace", slog.LevelDebug - 4, slog.LevelDebug - 5},
		{"debug", slog.LevelDebug, slog.LevelDebug - 1},
		{"info", slog.LevelInfo, slog.LevelDebug},
		{"WARN", slog.LevelWarn, slog.LevelInfo},
		{"error", slog.LevelError, slog.LevelWarn},
	}
	for _, tt := range tests {
		l := &logFlags{level: tt.level, format: "plain"}
		log, err := l.logger(io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", tt.level, err)
		}
		ctx := context.Background()
		if !log.Enabled(ctx, tt.enabled) || log.Enabled(ctx, tt.off) {
			t.Errorf("-log-level=%s: enabled(%v)=%v enabled(%v)=%v", tt.level, tt.enabled, log.Enabled(ctx, tt.enabled), tt.off, log.Enabled(ctx, tt.off))
		}
	}
}
