package cmd

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/internal/golden"
	"github.com/linkerd-go/linkerd/pkg/version"
)

// TestGolden runs command lines and compares stdout, stderr and the exit code
// with testdata/<name>.golden. Regenerate with: go test ./cli/cmd -update
func TestGolden(t *testing.T) {
	saved := version.Version
	version.Version = "test-1.2.3"
	t.Cleanup(func() { version.Version = saved })
	// A kubeconfig exists: the server version comes from Env.ServerVersion
	// unless --state-dir names a local mesh.
	t.Setenv("KUBECONFIG", "/fake/kubeconfig")

	serverOK := func(ctx context.Context, opts *GlobalOptions) (string, error) {
		return "stable-9.9.9 (namespace " + opts.LinkerdNamespace + ")", nil
	}
	serverDown := func(context.Context, *GlobalOptions) (string, error) {
		return "", errors.New("connection refused")
	}

	tests := []struct {
		name   string
		args   []string
		server ServerVersionFunc
	}{
		{name: "version", args: []string{"version"}},
		{name: "version_client", args: []string{"version", "--client"}},
		{name: "version_short", args: []string{"version", "--short"}},
		{name: "version_short_client", args: []string{"version", "--short", "--client"}},
		{name: "version_server_lookup", args: []string{"version", "-L", "mesh"}, server: serverOK},
		{name: "version_server_lookup_short", args: []string{"--linkerd-namespace=mesh", "version", "--short"}, server: serverOK},
		{name: "version_server_error", args: []string{"version"}, server: serverDown},
		{name: "version_local_mesh_down", args: []string{"version", "--state-dir", "/nonexistent/l5d"}, server: serverOK},
		{name: "error_unknown_command", args: []string{"frobnicate"}},
		{name: "error_unknown_flag", args: []string{"version", "--bogus"}},
		{name: "error_extra_argument", args: []string{"version", "now"}},
		{name: "error_missing_flag_value", args: []string{"version", "-L"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), tt.args, Env{Stdout: &stdout, Stderr: &stderr, ServerVersion: tt.server})
			golden.Check(t, tt.name, golden.Result(code, stdout.String(), stderr.String()))

			// Independent of the golden files: errors are exactly one line.
			if strings.HasPrefix(tt.name, "error_") {
				if code == 0 {
					t.Error("exit code 0 for an error case")
				}
				if n := strings.Count(stderr.String(), "\n"); n != 1 || !strings.HasPrefix(stderr.String(), "Error: ") {
					t.Errorf("stderr is not a single Error: line: %q", stderr.String())
				}
				if stdout.Len() != 0 {
					t.Errorf("stdout not empty on error: %q", stdout.String())
				}
			}
		})
	}
}

func TestGlobalFlagsReachCommands(t *testing.T) {
	t.Setenv("KUBECONFIG", "/fake/kubeconfig") // a cluster, not a local mesh, is the target
	var seen GlobalOptions
	lookup := func(_ context.Context, opts *GlobalOptions) (string, error) {
		seen = *opts
		return "v", nil
	}
	var stdout, stderr bytes.Buffer
	args := []string{"version", "--kubeconfig", "/tmp/kc", "--context", "kind-a", "-L", "l5d"}
	if code := Execute(context.Background(), args, Env{Stdout: &stdout, Stderr: &stderr, ServerVersion: lookup}); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := GlobalOptions{LinkerdNamespace: "l5d", Kubeconfig: "/tmp/kc", KubeContext: "kind-a"}
	if seen != want {
		t.Errorf("server lookup saw %+v, want %+v", seen, want)
	}

	// Defaults.
	if code := Execute(context.Background(), []string{"version"}, Env{Stdout: &stdout, Stderr: &stderr, ServerVersion: lookup}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if want := (GlobalOptions{LinkerdNamespace: DefaultLinkerdNamespace}); seen != want {
		t.Errorf("defaults: server lookup saw %+v, want %+v", seen, want)
	}
}

func TestOneLine(t *testing.T) {
	tests := map[string]string{
		"plain":                   "plain",
		"a\nb":                    "a b",
		"a\n\n\tb  \r\n":          "a b",
		"unknown command \"x\"\n": "unknown command \"x\"",
	}
	for in, want := range tests {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}
