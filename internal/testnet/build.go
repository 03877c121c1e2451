package testnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildTimeout bounds one go build invocation.
const buildTimeout = 8 * time.Minute

// builtBinary is the outcome of building one package, shared by all tests of
// the test binary.
type builtBinary struct {
	once sync.Once
	path string
	err  error
}

var (
	buildMu    sync.Mutex
	buildCache = make(map[string]*builtBinary)
)

// BuildBinaries builds the listed main packages (for example
// "./cmd/linkerd-proxy" or "./test/testapp", relative to the module root, or
// full import paths) and returns their paths keyed by the package's base
// name. Each package is built at most once per test binary; go build reuses
// the build cache of the environment (GOCACHE). The module root is found by
// walking up from the working directory to go.mod.
//
// Binaries are written to a world-readable directory under os.TempDir, so
// processes running as another user (such as the proxy's uid 2102) can
// execute them; each one is replaced atomically, so concurrent test
// binaries may share it.
func BuildBinaries(t testing.TB, pkgs ...string) map[string]string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	paths := make(map[string]string, len(pkgs))
	for _, pkg := range pkgs {
		base := path.Base(pkg)
		if prev, ok := paths[base]; ok {
			t.Fatalf("testnet: BuildBinaries: packages %q and %q share the name %q", prev, pkg, base)
		}
		buildMu.Lock()
		b, ok := buildCache[pkg]
		if !ok {
			b = &builtBinary{}
			buildCache[pkg] = b
		}
		buildMu.Unlock()
		b.once.Do(func() { b.path, b.err = build(root, pkg) })
		if b.err != nil {
			t.Fatalf("testnet: %v", b.err)
		}
		paths[base] = b.path
	}
	return paths
}

// moduleRoot walks up from the working directory to the directory holding
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for range 64 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("find module root: no go.mod above the working directory")
}

// build compiles pkg from the module at root and returns the binary's path.
func build(root, pkg string) (string, error) {
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("l5dt-bin-%d", os.Getuid()), hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	// MkdirAll does not change existing directories; make sure other users
	// can reach the binaries.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			return "", fmt.Errorf("build %s: %w", pkg, err)
		}
	}
	final := filepath.Join(dir, path.Base(pkg))
	tmpDir, err := os.MkdirTemp(dir, "build-*")
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, path.Base(pkg))

	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, pkg)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(string(out)))
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	return final, nil
}
