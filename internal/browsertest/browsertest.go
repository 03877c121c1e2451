// Package browsertest drives Debian's headless Chromium from tests (over
// the DevTools protocol, with chromedp): load pages, wait for elements,
// evaluate JavaScript, save screenshots as test artifacts.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/linkerd-go/linkerd/internal/testkit"
)

// Browser is one headless Chromium with one tab.
type Browser struct {
	t     testing.TB
	ctx   context.Context
	shots string
}

// Find returns the chromium binary; the test skips without one, and fails
// under CI=true.
func Find(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testkit.SkipOrFail(t, "no chromium for the browser test (apt install chromium)")
	return ""
}

// ArtifactsDir is where a test's screenshots go: $L5D_TEST_ARTIFACTS/name
// when set (kept), else a temporary directory kept, and logged, only when
// the test fails.
func ArtifactsDir(t testing.TB, name string) string {
	t.Helper()
	if base := os.Getenv("L5D_TEST_ARTIFACTS"); base != "" {
		dir := filepath.Join(base, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dir, err := os.MkdirTemp("", "l5d-"+name+"-screens-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screenshots kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// Start starts chromium headless, with a laptop-sized window, screenshots
// going to shots; it stops when the test ends.
func Start(t testing.TB, chromium, shots string) *Browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // root, as in CI
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
		// The network here is closed: nothing of Chromium's own (updates,
		// sync, QUIC probes, proxies from the environment) may try to go out.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-proxy-server", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancel(); acancel() })
	// The first Run starts the browser, for as long as ctx: no timeout here.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string]("navigator.userAgent")); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	return &Browser{t: t, ctx: ctx, shots: shots}
}

// T is the test the browser belongs to.
func (b *Browser) T() testing.TB { return b.t }

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Do runs steps (at most 60 s); on failure it saves a screenshot and fails
// the test.
func (b *Browser) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.Screenshot("failed-" + what)
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Screenshot saves the whole page as name.png in the artifacts directory.
func (b *Browser) Screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.shots, unsafeName.ReplaceAllString(name, "-")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot: %s", path)
}

// Eval evaluates expr once.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// Poll evaluates expr until ok accepts its value, for at most 60 s; then
// it saves a screenshot and fails the test.
func Poll[T any](b *Browser, what, expr string, ok func(T) bool) T {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
		cancel()
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			b.Screenshot("failed-" + what)
			b.t.Fatalf("%s: last value %v, error %v", what, v, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
