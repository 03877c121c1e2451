package cmd

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/testkit"
)

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// quiet is the components' logger in tests.
var quiet = slog.New(slog.DiscardHandler)

// parseFlags defines a subcommand's flags with addFlags and parses args,
// as the subcommand does.
func parseFlags(t *testing.T, addFlags func(*flag.FlagSet), args ...string) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	addFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
}

// startComponent binds c's listeners and runs it until the test ends,
// which waits (bounded) for a clean stop.
func startComponent(t *testing.T, c component) {
	t.Helper()
	if err := c.listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("run did not return within 15s of cancellation")
		}
	})
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// waitReady polls admin's /ready until it answers 200 (at most 10 s).
func waitReady(t *testing.T, admin string) {
	t.Helper()
	testkit.EventuallyTrue(t, 30*time.Second, admin+"/ready to answer 200", func() bool {
		code, _ := httpGet(t, admin+"/ready")
		return code == http.StatusOK
	})
}
