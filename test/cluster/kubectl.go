package cluster

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testkit"
)

// KubectlEnv names an environment variable that may point at the kubectl
// binary to use.
const KubectlEnv = "L5D_KUBECTL"

var errNoKubectl = errors.New("no kubectl binary")

// kubectlTimeout bounds one kubectl run.
const kubectlTimeout = 2 * time.Minute

// KubectlPath returns the kubectl binary tests use: $L5D_KUBECTL, else
// kubectl in the binaries' directory, else /usr/bin/kubectl, else kubectl
// on $PATH. It returns "" when there is none.
func KubectlPath() string {
	if p := os.Getenv(KubectlEnv); p != "" {
		return p
	}
	for _, p := range []string{filepath.Join(BinDir(), "kubectl"), "/usr/bin/kubectl"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p
	}
	return ""
}

// Kubectl runs kubectl with args against the cluster as the admin user and
// returns its standard output. It fails the test when kubectl fails (with
// its standard error), and skips it (fails it under CI=true) when there is
// no kubectl.
func (c *Cluster) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	RequireKubectl(t)
	out, stderr, err := c.kubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// Apply writes manifest (YAML) to a temporary file and runs
// `kubectl apply -f` on it, returning kubectl's output.
func (c *Cluster) Apply(t testing.TB, manifest string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	return c.Kubectl(t, "apply", "-f", f)
}

// RequireKubectl skips the test (fails it under CI=true) when there is no
// kubectl binary.
func RequireKubectl(t testing.TB) {
	t.Helper()
	if KubectlPath() == "" {
		testkit.SkipOrFail(t, "no kubectl (set %s, or install it: apt-get install kubernetes-client)", KubectlEnv)
	}
}

func (c *Cluster) kubectl(args ...string) (stdout, stderr string, err error) {
	return runKubectl(context.Background(), c.Kubeconfig, c.Dir, args...)
}

// runKubectl runs kubectl with kubeconfig and a cache dir under dir.
func runKubectl(ctx context.Context, kubeconfig, dir string, args ...string) (stdout, stderr string, err error) {
	bin := KubectlPath()
	if bin == "" {
		return "", "", errNoKubectl
	}
	ctx, cancel := context.WithTimeout(ctx, kubectlTimeout)
	defer cancel()
	full := append([]string{"--kubeconfig=" + kubeconfig, "--cache-dir=" + filepath.Join(dir, "kubectl-cache")}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = childEnv()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Kubectl runs kubectl with args against the node as the admin user (on
// the host, through Kubeconfig) and returns its standard output. It fails
// the test when kubectl fails (with its standard error), and skips it
// (fails it under CI=true) when there is no kubectl.
func (n *Node) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	RequireKubectl(t)
	out, stderr, err := n.RunKubectl(context.Background(), args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// RunKubectl is Kubectl for callers that handle failure themselves (and
// outside tests): it returns kubectl's output and error. Each run is
// bounded by two minutes and by ctx.
func (n *Node) RunKubectl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return runKubectl(ctx, n.Kubeconfig, n.Dir, args...)
}

// Apply writes manifest (YAML) to a temporary file and runs
// `kubectl apply -f` on it, returning kubectl's output.
func (n *Node) Apply(t testing.TB, manifest string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	return n.Kubectl(t, "apply", "-f", f)
}
