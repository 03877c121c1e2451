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
	upErr    error
}

func (f *fakeLocalMesh) Up(context.Context) error { f.calls = append(f.calls, "up"); return f.upErr }
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
func (f *fakeLocalMesh) Delete(_ context.Context, ns, name string) error {
	f.calls = append(f.calls, "delete "+ns+"/"+name)
	return nil
}
func (f *fakeLocalMesh) ExecCommand(ns, name string, args []string) ([]string, error) {
	f.calls = append(f.calls, "exec "+ns+"/"+name)
	return args, nil
}
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
	for _, args := range [][]string{{"down"}, {"status"}, {"delete", "demo/web"}, {"exec", "demo/web", "--", "true"}, {"run", "--name", "web", "--", "true"}, {"apply", "-f", "x.yaml"}, {"supervise", "--pod", "demo/web"}} {
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
		"--port", "8080", "--port", "9090", "--service-account", "websa", "--", "./web", "--listen", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	want := localmesh.RunSpec{Name: "web", Namespace: "demo", Ports: []int{8080, 9090}, ServiceAccount: "websa", Command: []string{"./web", "--listen", ":8080"}}
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
			Identity: "web.demo.serviceaccount.identity.linkerd.cluster.local", App: &localmesh.Proc{}, NetNS: "l5dl-demo-web"}, ProxyReady: true,
			Running: []string{"proxy", "supervisor", "app"}, PIDs: map[string]int{"proxy": 10, "supervisor": 11, "app": 12},
			ClusterIP: "10.96.0.10", App: localmesh.AppStatus{Ready: true, Restarts: 3}},
		{Workload: &localmesh.Workload{Name: "bot", Namespace: "demo", IP: netip.MustParseAddr("10.250.0.5"), Identity: "bot.demo", App: &localmesh.Proc{}, NetNS: "l5dl-demo-bot"},
			Running: []string{"proxy", "supervisor"}, PIDs: map[string]int{"proxy": 20, "supervisor": 21}, Dead: []string{"app"}},
		{Workload: &localmesh.Workload{Name: "linkerd-identity", Namespace: "linkerd", IP: netip.MustParseAddr("10.250.0.2"), Identity: "id"},
			ProxyReady: true, Running: []string{"proxy", "identity"}, PIDs: map[string]int{"proxy": 3, "identity": 4}},
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
		{"NAMESPACE", "NAME", "POD IP", "NETNS", "SERVICE", "PROXY", "APP", "RESTARTS", "PROCESSES", "IDENTITY"},
		{"demo", "web", "10.250.0.4", "l5dl-demo-web", "web (10.96.0.10:8080)", "ready", "ready", "3", "proxy:10,supervisor:11,app:12", "web.demo.serviceaccount.identity.linkerd.cluster.local"},
		{"demo", "bot", "10.250.0.5", "l5dl-demo-bot", "-", "not ready", "not ready", "0", "proxy:20,supervisor:21 dead:app", "bot.demo"},
		{"linkerd", "linkerd-identity", "10.250.0.2", "-", "-", "ready", "-", "-", "proxy:3,identity:4", "id"},
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

func TestLocalRunEnvAndLabels(t *testing.T) {
	fake := &fakeLocalMesh{}
	_, err := runLocal(t, fake, nil, "run", "--name", "web", "--env", "A=1", "--env", "B=x=y", "-l", "tier=front", "--label", "app=shop", "--", "./web")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A=1", "B=x=y"}; !reflect.DeepEqual(fake.spec.Env, want) {
		t.Errorf("env %q, want %q", fake.spec.Env, want)
	}
	if want := map[string]string{"tier": "front", "app": "shop"}; !reflect.DeepEqual(fake.spec.Labels, want) {
		t.Errorf("labels %v, want %v", fake.spec.Labels, want)
	}
	for _, bad := range []string{"nokey", "=v"} {
		fake := &fakeLocalMesh{}
		if _, err := runLocal(t, fake, nil, "run", "--name", "web", "--label", bad, "--", "./web"); err == nil || len(fake.calls) != 0 {
			t.Errorf("--label %q: %v %v, want an error and no call", bad, err, fake.calls)
		}
	}
}

func TestLocalDeleteAndExec(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // the call; "" for an error without call
	}{
		{[]string{"delete", "demo/web"}, "delete demo/web"},
		{[]string{"delete", "web"}, ""},
		{[]string{"delete", "demo/"}, ""},
		{[]string{"delete"}, ""},
		{[]string{"exec", "demo/web", "--", "true"}, "exec demo/web"},
		{[]string{"exec", "demo/web"}, ""},
		{[]string{"exec", "demo/a/b", "--", "true"}, ""},
	} {
		fake := &fakeLocalMesh{}
		_, err := runLocal(t, fake, nil, tc.args...)
		if tc.want == "" {
			if err == nil || len(fake.calls) != 0 {
				t.Errorf("%q: %v %v, want an error and no call", tc.args, err, fake.calls)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(fake.calls, []string{tc.want}) {
			t.Errorf("%q: %v, calls %v, want %q", tc.args, err, fake.calls, tc.want)
		}
	}
	// The command's exit status is exec's.
	fake := &fakeLocalMesh{}
	_, err := runLocal(t, fake, nil, "exec", "demo/web", "--", "sh", "-c", "exit 3")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 3 {
		t.Errorf("exit 3: %v, want exit status 3", err)
	}
}

func TestLocalUpListsPrerequisites(t *testing.T) {
	fake := &fakeLocalMesh{upErr: &localmesh.PrerequisiteError{Problems: []localmesh.Problem{
		{What: "ip not found in PATH", Fix: "apt-get install -y iproute2"},
		{What: "iptables not found in PATH", Fix: "apt-get install -y iptables"},
	}}}
	out, err := runLocal(t, fake, nil, "up")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("up: %v, want exit status 1", err)
	}
	for _, want := range []string{"Error: the local mesh cannot start", "\n  - ip not found in PATH; fix: apt-get install -y iproute2\n",
		"\n  - iptables not found in PATH; fix: apt-get install -y iptables\n", "apt-get install -y iproute2 iptables"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestLocalUpInstallMissing: up installs missing packages unless refused;
// other subcommands never do.
func TestLocalUpInstallMissing(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"up"}, true},
		{[]string{"up", "--install-missing=false"}, false},
		{[]string{"status"}, false},
	} {
		fake := &fakeLocalMesh{}
		if _, err := runLocal(t, fake, nil, tt.args...); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if fake.cfg.InstallMissing != tt.want {
			t.Errorf("%v: InstallMissing = %v, want %v", tt.args, fake.cfg.InstallMissing, tt.want)
		}
	}
}
