package integration

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testnet"
)

// TestAwaitShutdown runs a job the way an injected Job pod does: linkerd-await
// waits for the proxy, runs the command, then shuts the proxy down, and the
// pod's exit status is the command's.
func TestAwaitShutdown(t *testing.T) {
	testnet.Require(t, "ip", "nsenter", "iptables")
	bins := testnet.BuildBinaries(t, "./cmd/linkerd-proxy", "./cmd/linkerd-init", "./cmd/linkerd-await", "./test/testapp")
	n := testnet.New(t)
	job := startMeshedPod(t, n.AddPod("job"), bins, "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED=true")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := job.Command(ctx, bins["linkerd-await"], "--shutdown", "--", "sh", "-c", "echo job ran; exit 3").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("linkerd-await: %v (want exit status 3)\n%s", err, out)
	}
	select {
	case <-job.proxy.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("proxy still running after linkerd-await --shutdown")
	}
	if err := job.proxy.Wait(); err != nil {
		t.Errorf("proxy exit: %v", err)
	}
}
