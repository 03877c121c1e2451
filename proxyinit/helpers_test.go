package proxyinit

import (
	"os"
	"testing"
)

// requireEnv skips the test when ok is false, unless CI=true, where a missing
// prerequisite is a failure: CI must run every test.
func requireEnv(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("prerequisite missing under CI=true: %s", why)
	}
	t.Skipf("skipping: %s", why)
}
