package testnet

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// strictEnv is the environment variable that turns skips into failures.
const strictEnv = "CI"

// SkipOrFatal skips the test with the formatted message, or fails it when the
// environment variable CI is "true", where a missing prerequisite is a broken
// CI machine rather than a reason to skip.
func SkipOrFatal(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(strictEnv) == "true" {
		t.Fatalf("%s (CI=true: prerequisites are mandatory)", msg)
	}
	t.Skip(msg)
}

var (
	netnsProbeOnce sync.Once
	netnsProbeErr  error
)

// Require skips the test with a clear message unless the process runs on
// Linux as root, may create network namespaces, and finds every named binary
// (for example "ip", "iptables") in PATH. Under CI=true it fails instead.
func Require(t testing.TB, binaries ...string) {
	t.Helper()
	if msg := requireProblem(runtime.GOOS, os.Geteuid(), binaries, exec.LookPath, probeOnce); msg != "" {
		SkipOrFatal(t, "testnet: %s", msg)
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
