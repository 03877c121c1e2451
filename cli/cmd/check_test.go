package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/cli/healthcheck"
	"github.com/linkerd-go/linkerd/internal/golden"
	"github.com/linkerd-go/linkerd/pkg/version"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8sversion "k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// checkGolden compares the exit code, stdout and stderr with testdata/<name>.golden.
func checkGolden(t *testing.T, name string, code int, stdout, stderr string) {
	t.Helper()
	golden.Check(t, name, golden.Result(code, stdout, stderr))
}

// fakeCluster is a cluster without Linkerd where every access is allowed.
func fakeCluster(objs ...runtime.Object) kubernetes.Interface {
	objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}})
	cs := fake.NewClientset(objs...)
	cs.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &k8sversion.Info{GitVersion: "v1.36.3"}
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		r.Status.Allowed = true
		return true, r, nil
	})
	return cs
}

// TestCheckRuns runs the check command on fake clusters.
func TestCheckRuns(t *testing.T) {
	saved := version.Version
	version.Version = "test-1.2.3"
	t.Cleanup(func() { version.Version = saved })
	// A kubeconfig exists (the fake cluster stands behind it): the cluster
	// is the target, not a local mesh.
	t.Setenv("KUBECONFIG", "/fake/kubeconfig")

	tests := []struct {
		name     string
		args     []string
		cluster  kubernetes.Interface
		clientEr error
		wantCode int
	}{
		{name: "check_pre", args: []string{"check", "--pre"}, cluster: fakeCluster()},
		{name: "check_pre_short", args: []string{"check", "--pre", "-o", "short"}, cluster: fakeCluster()},
		{name: "check_pre_namespace_exists", args: []string{"check", "--pre", "-L", "mesh"}, wantCode: 1,
			cluster: fakeCluster(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "mesh"}})},
		{name: "check_not_installed", args: []string{"check"}, cluster: fakeCluster(), wantCode: 1},
		{name: "check_not_installed_json", args: []string{"check", "-o", "json"}, cluster: fakeCluster(), wantCode: 1},
		{name: "check_no_client", args: []string{"check", "--pre"}, clientEr: errors.New("no configuration has been provided"), wantCode: 1},
		{name: "check_proxy_namespace_first", args: []string{"-n", "emojivoto", "check", "--proxy", "-o", "short"}, cluster: fakeCluster(), wantCode: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			deps := checkDeps{
				newClient: func() (kubernetes.Interface, error) {
					if tt.clientEr != nil {
						return nil, tt.clientEr
					}
					return tt.cluster, nil
				},
				now:           func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
				retryInterval: 10 * time.Millisecond,
			}
			code := executeWithDeps(t, tt.args, deps, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			checkGolden(t, tt.name, code, stdout.String(), stderr.String())
			if strings.Contains(tt.name, "json") {
				var out healthcheck.JSONResult
				if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
					t.Errorf("JSON output does not parse: %v", err)
				}
				if out.Success != (tt.wantCode == 0) {
					t.Errorf("JSON success = %v with exit code %d", out.Success, code)
				}
			}
		})
	}
}

// executeWithDeps runs the CLI with args, giving the check command deps.
func executeWithDeps(t *testing.T, args []string, deps checkDeps, stdout, stderr *bytes.Buffer) int {
	t.Helper()
	saved := newCheckDeps
	newCheckDeps = func(*GlobalOptions) checkDeps { return deps }
	t.Cleanup(func() { newCheckDeps = saved })
	// --wait keeps retried checks short.
	return Execute(context.Background(), append(args, "--wait", "100ms"), Env{Stdout: stdout, Stderr: stderr})
}

// TestCheckErrors covers bad command lines: one-line errors, exit 1, and
// nothing checked.
func TestCheckErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"error_check_pre_and_proxy", []string{"check", "--pre", "--proxy"}},
		{"error_check_namespace_without_proxy", []string{"check", "-n", "emojivoto"}},
		{"error_check_bad_output", []string{"check", "-o", "yaml"}},
		{"error_check_bad_wait", []string{"check", "--wait", "0s"}},
		{"error_check_bad_wait_syntax", []string{"check", "--wait", "soon"}},
		{"error_check_extra_argument", []string{"check", "now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := newCheckDeps
			newCheckDeps = func(*GlobalOptions) checkDeps {
				return checkDeps{newClient: func() (kubernetes.Interface, error) {
					t.Error("a check ran for an invalid command line")
					return nil, errors.New("unexpected")
				}}
			}
			t.Cleanup(func() { newCheckDeps = saved })
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), tt.args, Env{Stdout: &stdout, Stderr: &stderr})
			checkGolden(t, tt.name, code, stdout.String(), stderr.String())
			if code != 1 || stdout.Len() != 0 || strings.Count(stderr.String(), "\n") != 1 || !strings.HasPrefix(stderr.String(), "Error: ") {
				t.Errorf("want exit 1 and a single Error: line, got %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
			}
		})
	}
}

// TestCheckKubeconfigMissing goes through the real client construction.
func TestCheckKubeconfigMissing(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Execute(context.Background(), []string{"check", "--pre", "--kubeconfig", "/nonexistent/kubeconfig"}, Env{Stdout: &stdout, Stderr: &stderr})
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	out := stdout.String()
	if !strings.Contains(out, "× can initialize the client\n") || !strings.Contains(out, "/nonexistent/kubeconfig") || !strings.HasSuffix(out, "Status check results are ×\n") {
		t.Errorf("unexpected output:\n%s", out)
	}
	if strings.Contains(out, "can query the Kubernetes API") {
		t.Errorf("checks ran after the client failed:\n%s", out)
	}
}

func TestClusterServerVersionUnavailable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Execute(context.Background(), []string{"version", "--kubeconfig", "/nonexistent/kubeconfig"}, Env{Stdout: &stdout, Stderr: &stderr, ServerVersion: ClusterServerVersion})
	if code != 0 || !strings.HasSuffix(stdout.String(), "Server version: unavailable\n") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
