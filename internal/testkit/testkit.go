// Package testkit is the tests' shared kit: waiting for a condition
// (Eventually), prerequisites that skip locally but fail under CI
// (SkipOrFail, Integration), and a throwaway mesh PKI on pkg/pki (NewMeshCA).
package testkit

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// StrictEnv is the environment variable that turns a missing prerequisite
// from a skip into a failure: CI sets CI=true, where every test must run.
const StrictEnv = "CI"

// Strict reports whether missing prerequisites fail tests (CI=true).
func Strict() bool { return os.Getenv(StrictEnv) == "true" }

// SkipOrFail skips the test with the formatted message, or fails it under
// CI=true, where a missing prerequisite is a broken CI machine rather than
// a reason to pass.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s (fatal because %s=true: prerequisites are mandatory)", msg, StrictEnv)
	}
	t.Skipf("%s", msg)
}

// Integration marks a test as an integration test (network namespaces,
// root, a real API server or node): under -short (make test-unit) it is
// skipped, also under CI, since make test-integration runs it.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped by -short; make test-integration runs it")
	}
}

// Eventually calls cond until it returns nil, and fails the test with cond's
// last error when timeout passes first. It polls often at first and backs
// off to every 100ms, so fast conditions cost little and slow ones do not
// spin. Give timeouts that hold on a loaded machine: they bound a failure's
// wait, not a success's.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatal(err)
	}
}

// EventuallyTrue is Eventually for a boolean condition; what says what was
// awaited, for the failure message.
func EventuallyTrue(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	Eventually(t, timeout, func() error {
		if cond() {
			return nil
		}
		return errors.New(what)
	})
}

// Poll is Eventually's loop without a test: it returns nil once cond does,
// or an error wrapping cond's last one after timeout. Use it where a
// failure must not stop the calling goroutine (t.Fatal must not be called
// outside the test's goroutine).
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("still not so after %v: %w", timeout, err)
		}
		time.Sleep(min(wait, time.Until(deadline)+time.Millisecond))
		wait = min(2*wait, 100*time.Millisecond)
	}
}
