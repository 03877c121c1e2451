package healthcheck

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/pkg/pki"
)

// fakeLocalMesh is a LocalMesh with canned answers.
type fakeLocalMesh struct {
	status    []localmesh.WorkloadStatus
	statusErr error
	id        *localmesh.IdentityPEM
	problems  []localmesh.Problem
}

func (f *fakeLocalMesh) StateDir() string { return "/var/lib/l5d" }
func (f *fakeLocalMesh) Status(context.Context) ([]localmesh.WorkloadStatus, error) {
	return f.status, f.statusErr
}
func (f *fakeLocalMesh) Identity() (*localmesh.IdentityPEM, error) {
	if f.id == nil {
		return nil, errors.New("no identity")
	}
	return f.id, nil
}
func (f *fakeLocalMesh) Prerequisites(context.Context) []localmesh.Problem { return f.problems }

func testIdentity(t *testing.T) *localmesh.IdentityPEM {
	t.Helper()
	anchor, err := pki.NewCA("root.linkerd.cluster.local", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := anchor.NewIssuer("identity.linkerd.cluster.local", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.EncodePrivateKeyPEM(issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &localmesh.IdentityPEM{Anchors: pki.EncodeCertificatesPEM(anchor.Cert), IssuerCert: pki.EncodeCertificatesPEM(issuer.Cert), IssuerKey: key,
		Paths: [3]string{"ca-bundle.crt", "issuer/crt.pem", "issuer/key.pem"}}
}

func pod(ns, name string, controlPlane, proxyReady bool, dead ...string) localmesh.WorkloadStatus {
	return localmesh.WorkloadStatus{Workload: &localmesh.Workload{Namespace: ns, Name: name, ControlPlane: controlPlane}, ProxyReady: proxyReady, Dead: dead}
}

func TestLocalCategories(t *testing.T) {
	healthy := []localmesh.WorkloadStatus{
		pod("linkerd", "linkerd-identity", true, true),
		pod("linkerd", "linkerd-destination", true, true),
		pod("demo", "web", false, true),
	}
	tests := []struct {
		name    string
		mesh    *fakeLocalMesh
		proxy   bool
		version string
		wantOK  bool
		want    []string // lines of the table output that must be there
	}{
		{"healthy", &fakeLocalMesh{status: healthy, id: testIdentity(t)}, true, "v1", true,
			[]string{"√ the local mesh is up", "√ control plane pods are ready", "√ issuer cert is issued by the trust anchor", "√ data plane proxies are ready"}},
		{"not up", &fakeLocalMesh{statusErr: localmesh.ErrNotUp}, false, "v1", false,
			[]string{"× the local mesh is up", "no local mesh is up at /var/lib/l5d: start one with linkerd local up"}},
		{"dead destination", &fakeLocalMesh{status: []localmesh.WorkloadStatus{pod("linkerd", "linkerd-identity", true, true), pod("linkerd", "linkerd-destination", true, false, "policy")}, id: testIdentity(t)}, false, "v1", false,
			[]string{"× control plane pods are ready", "pod linkerd/linkerd-destination: not running: policy"}},
		{"proxy not ready", &fakeLocalMesh{status: append(healthy[:2:2], pod("demo", "web", false, false)), id: testIdentity(t)}, true, "v1", false,
			[]string{"√ control plane pods are ready", "× data plane proxies are ready", "pod demo/web: the proxy is not ready"}},
		{"bad identity", &fakeLocalMesh{status: healthy, id: &localmesh.IdentityPEM{Anchors: []byte("junk"), Paths: [3]string{"ca-bundle.crt"}}}, false, "v1", false,
			[]string{"× certificate config is valid", "the trust anchors (ca-bundle.crt)"}},
		{"version mismatch", &fakeLocalMesh{status: healthy, id: testIdentity(t)}, false, "v0", true,
			[]string{"‼ control plane and cli versions match", "control plane running v0 but cli running v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			r, err := NewRenderer(TableOutput, &out)
			if err != nil {
				t.Fatal(err)
			}
			s := &State{CLIVersion: "v1", ServerVersion: func(context.Context) (string, error) { return tt.version, nil }}
			ok := Run(context.Background(), LocalCategories(tt.mesh, tt.proxy), s, Options{Wait: 50 * time.Millisecond, RetryInterval: 10 * time.Millisecond}, r.Observe)
			if err := r.Finish(ok); err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK {
				t.Errorf("success = %v, want %v:\n%s", ok, tt.wantOK, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestLocalPreCategories(t *testing.T) {
	m := &fakeLocalMesh{problems: []localmesh.Problem{{What: "iptables is missing", Fix: "apt-get install iptables"}, {What: "prometheus is missing", Fix: "apt-get install prometheus", Optional: true}}}
	var out strings.Builder
	r, err := NewRenderer(TableOutput, &out)
	if err != nil {
		t.Fatal(err)
	}
	ok := Run(context.Background(), LocalPreCategories(m), &State{}, Options{Wait: time.Second}, r.Observe)
	if ok {
		t.Error("a missing required tool passed")
	}
	for _, w := range []string{"iptables is missing (fix: apt-get install iptables)", "prometheus is missing (fix: apt-get install prometheus)"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}
