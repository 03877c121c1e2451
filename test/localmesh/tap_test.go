package localmesh_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// vizTap runs `linkerd viz tap` against the running demo: the voting
// service's inbound requests, each with its response and end, and the
// broken choice's votes ending with gRPC status Unknown; a resource with no
// pods is a one-line error.
func vizTap(t *testing.T, linkerd, stateDir string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command(linkerd, "viz", "tap", "deploy/voting", "-n", "demo", "--state-dir", stateDir,
			"--duration", "5s", "--max-rps", "1000").CombinedOutput()
		if err != nil {
			t.Fatalf("viz tap: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		counts := map[string]int{}
		unknown := false
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			counts[f[0]]++
			if f[0] == "end" && strings.Contains(l, "grpc-status=Unknown") && strings.Contains(l, "proxy=in ") && strings.Contains(l, "tls=true") {
				unknown = true
			}
			if f[0] == "req" && !strings.Contains(l, ":path=/linkerdgo.demo.v1.Voting/") {
				t.Errorf("tapped request not to the voting service: %s", l)
			}
		}
		if counts["req"] > 0 && counts["rsp"] > 0 && counts["end"] > 0 && unknown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("viz tap never showed requests, responses and an Unknown gRPC status (%v):\n%s", counts, out)
		}
	}
	out, err := exec.Command(linkerd, "viz", "tap", "deploy/nothere", "-n", "demo", "--state-dir", stateDir).CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err == nil || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "no pods to tap for deployment/nothere") {
		t.Errorf("tap of a missing deployment: %v, %q", err, msg)
	}
}
