package testnet

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/linkerd-go/linkerd/internal/testkit"
)

var (
	netnsProbeOnce sync.Once
	netnsProbeErr  error
)

// Require skips the test with a clear message unless the process runs on
// Linux as root, may create network namespaces, and finds every named binary
// (for example "ip", "iptables") in PATH. Under CI=true it fails instead.
// It marks the test as an integration test (testkit.Integration): -short
// skips it.
func Require(t testing.TB, binaries ...string) {
	t.Helper()
	testkit.Integration(t)
	if msg := requireProblem(runtime.GOOS, os.Geteuid(), binaries, exec.LookPath, probeOnce); msg != "" {
		testkit.SkipOrFail(t, "testnet: %s", msg)
	}
}

func probeOnce() error {
	netnsProbeOnce.Do(func() { netnsProbeErr = probeNetNS() })
	return netnsProbeErr
}

// requireProblem returns why the harness cannot run, or "" when it can.
func requireProblem(goos string, euid int, binaries []string, lookPath func(string) (string, error), probe func() error) string {
	if goos != "linux" {
		return fmt.Sprintf("network namespaces need Linux, not %s", goos)
	}
	if euid != 0 {
		return fmt.Sprintf("needs root to create network namespaces (euid is %d)", euid)
	}
	var missing []string
	for _, b := range binaries {
		if _, err := lookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("missing required binaries in PATH: %s", strings.Join(missing, ", "))
	}
	if err := probe(); err != nil {
		return fmt.Sprintf("cannot create network namespaces: %v", err)
	}
	return ""
}
