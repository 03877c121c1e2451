package proxyinit

import (
	"testing"

	"github.com/linkerd-go/linkerd/internal/testkit"
)

// requireEnv skips the test when ok is false, unless CI=true, where a missing
// prerequisite is a failure: CI must run every test.
func requireEnv(t *testing.T, ok bool, why string) {
	t.Helper()
	if !ok {
		testkit.SkipOrFail(t, "skipping: %s", why)
	}
}
