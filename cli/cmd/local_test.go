package cmd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/cli/localmesh"
)

// fakeLocalMesh records what the commands asked of the mesh.
type fakeLocalMesh struct {
	cfg      localmesh.Config
	calls    []string
	spec     localmesh.RunSpec
	applied  string
	statuses []localmesh.WorkloadStatus
}

func (f *fakeLocalMesh) Up(context.Context) error { f.calls = append(f.calls, "up"); return nil }
func (f *fakeLocalMesh) Run(_ context.Context, spec localmesh.RunSpec) (*localmesh.Workload, error) {
	f.calls = append(f.calls, "run")
	f.spec = spec
	return &localmesh.Workload{Name: spec.Name}, nil
}
func (f *fakeLocalMesh) Apply(_ context.Context, name string, r io.Reader) (string, error) {
	f.calls = append(f.calls, "apply")
	b, err := io.ReadAll(r)
	f.applied = string(b)
	return "/store/" + filepath.Base(name), err
}
func (f *fakeLocalMesh) Status(context.Context) ([]localmesh.WorkloadStatus, error) {
	f.calls = append(f.calls, "status")
	return f.statuses, nil
}
func (f *fakeLocalMesh) Down(context.Context) error { f.calls = append(f.calls, "down"); return nil }
func (f *fakeLocalMesh) Supervise(_ context.Context, ns, name string) error {
	f.calls = append(f.calls, "supervise "+ns+"/"+name)
	return nil
}

// runLocal runs "local ARGS" over a fake mesh.
func runLocal(t *testing.T, fake *fakeLocalMesh, privileges error, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	created := false
	cmd := newCmdLocalWith(Env{Stdout: &out, Stderr: &out}, func(cfg localmesh.Config) (localMesh, error) {
		created = true
		fake.cfg = cfg
		return fake, nil
	}, func() error { return privileges })
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err := cmd.ExecuteContext(context.Background())
	if privileges != nil && created {
		t.Error("the mesh was created without privileges")
	}
	return out.String(), err
}

// TestLocalNeedsRoot: every subcommand but up refuses at once without root;
// up lists it among all its missing prerequisites (localmesh.Prerequisites).
func TestLocalNeedsRoot(t *testing.T) {
	for _, args := range [][]string{{"down"}, {"status"}, {"run", "--name", "web", "--", "true"}, {"apply", "-f", "x.yaml"}, {"supervise", "--pod", "demo/web"}} {
		fake := &fakeLocalMesh{}
		_, err := runLocal(t, fake, localmesh.ErrNotRoot, args...)
		if !errors.Is(err, localmesh.ErrNotRoot) {
			t.Errorf("%v: %v, want ErrNotRoot", args, err)
		}
		if len(fake.calls) != 0 {
			t.Errorf("%v: mesh called: %v", args, fake.calls)
		}
	}
	if msg := oneLine(localmesh.ErrNotRoot.Error()); strings.Contains(localmesh.ErrNotRoot.Error(), "\n") || msg == "" {
		t.Errorf("the message must be one line: %q", localmesh.ErrNotRoot)
	}
}

func TestLocalRunFlags(t *testing.T) {
	fake := &fakeLocalMesh{}
	_, err := runLocal(t, fake, nil, "--state-dir", "/tmp/s", "--bin-dir", "/tmp/b", "run", "--name", "web", "--namespace", "demo",
		"--port", "8080", "--service-account", "websa", "--", "./web", "--listen", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	want := localmesh.RunSpec{Name: "web", Namespace: "demo", Port: 8080, ServiceAccount: "websa", Command: []string{"./web", "--listen", ":8080"}}
	if !reflect.DeepEqual(fake.spec, want) {
		t.Fatalf("spec %+v, want %+v", fake.spec, want)
	}
	if fake.cfg.StateDir != "/tmp/s" || fake.cfg.BinDir != "/tmp/b" {
		t.Fatalf("config %+v", fake.cfg)
	}
	// Supervisors are this executable's hidden `local supervise`.
	if exe, _ := os.Executable(); !reflect.DeepEqual(fake.cfg.Supervisor, []string{exe, "local", "supervise"}) {
		t.Fatalf("supervisor command %q", fake.cfg.Supervisor)
	}
	if _, err := runLocal(t, &fakeLocalMesh{}, nil, "run", "--", "true"); err == nil {
		t.Error("run without --name: want an error")
	}
	if _, err := runLocal(t, &fakeLocalMesh{}, nil, "run", "--name", "web"); err == nil {
		t.Error("run without a command: want an error")
	}
}

func TestLocalApply(t *testing.T) {
	file := filepath.Join(t.TempDir(), "svc.yaml")
	if err := os.WriteFile(file, []byte("kind: Service\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := &fakeLocalMesh{}
	out, err := runLocal(t, fake, nil, "apply", "-f", file)
	if err != nil {
		t.Fatal(err)
	}
	if fake.applied != "kind: Service\n" || !strings.Contains(out, "/store/svc.yaml") {
		t.Fatalf("applied %q, output %q", fake.applied, out)
	}
	if _, err := runLocal(t, &fakeLocalMesh{}, nil, "apply"); err == nil {
		t.Error("apply without -f: want an error")
	}
}

func TestLocalSupervise(t *testing.T) {
	fake := &fakeLocalMesh{}
	if _, err := runLocal(t, fake, nil, "supervise", "--pod", "demo/web"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fake.calls, []string{"supervise demo/web"}) {
		t.Fatalf("calls %v", fake.calls)
	}
	for _, bad := range []string{"", "web", "demo/", "/web"} {
		fake := &fakeLocalMesh{}
		if _, err := runLocal(t, fake, nil, "supervise", "--pod", bad); err == nil || len(fake.calls) != 0 {
			t.Errorf("--pod %q: %v %v, want an error and no call", bad, err, fake.calls)
		}
	}
}

func TestLocalStatusTable(t *testing.T) {
	fake := &fakeLocalMesh{statuses: []localmesh.WorkloadStatus{
		{Workload: &localmesh.Workload{Name: "web", Namespace: "demo", IP: netip.MustParseAddr("10.250.0.4"), Service: "web", Port: 8080,
			Identity: "web.demo.serviceaccount.identity.linkerd.cluster.local", App: &localmesh.Proc{}}, ProxyReady: true,
			Running: []string{"proxy", "supervisor", "app"}, ClusterIP: "10.96.0.10", App: localmesh.AppStatus{Ready: true, Restarts: 3}},
		{Workload: &localmesh.Workload{Name: "bot", Namespace: "demo", IP: netip.MustParseAddr("10.250.0.5"), Identity: "bot.demo", App: &localmesh.Proc{}},
			Running: []string{"proxy", "supervisor"}, Dead: []string{"app"}},
		{Workload: &localmesh.Workload{Name: "linkerd-identity", Namespace: "linkerd", IP: netip.MustParseAddr("10.250.0.2"), Identity: "id"},
			ProxyReady: true, Running: []string{"proxy", "identity"}},
	}}
	out, err := runLocal(t, fake, nil, "status")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows:\n%s", out)
	}
	want := [][]string{
		{"NAMESPACE", "NAME", "POD IP", "SERVICE", "PROXY", "APP", "RESTARTS", "PROCESSES", "IDENTITY"},
		{"demo", "web", "10.250.0.4", "web (10.96.0.10:8080)", "ready", "ready", "3", "proxy,supervisor,app", "web.demo.serviceaccount.identity.linkerd.cluster.local"},
		{"demo", "bot", "10.250.0.5", "-", "not ready", "not ready", "0", "proxy,supervisor dead:app", "bot.demo"},
		{"linkerd", "linkerd-identity", "10.250.0.2", "-", "ready", "-", "-", "proxy,identity", "id"},
	}
	cols := regexp.MustCompile(`\s{2,}`)
	for i, line := range lines {
		if got := cols.Split(strings.TrimSpace(line), -1); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("line %d: columns %q, want %q", i, got, want[i])
		}
	}
}

func TestLocalRegistered(t *testing.T) {
	root := NewRootCmd(Env{Stdout: io.Discard, Stderr: io.Discard})
	c, _, err := root.Find([]string{"local", "up"})
	if err != nil || c.Name() != "up" {
		t.Fatalf("linkerd local up: %v %v", c, err)
	}
}
