package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// buildTimeout bounds the go build of the images' binaries (a cold build
// cache compiles the whole module).
const buildTimeout = 10 * time.Minute

// versionVar is the variable the binaries report as their version.
const versionVar = "github.com/linkerd-go/linkerd/pkg/version.Version"

// goBuild builds the main packages pkgs of the module at root into dir,
// static and stripped, and returns their paths keyed by binary name.
func goBuild(ctx context.Context, root, dir, version string, pkgs []string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	args := []string{"build", "-trimpath", "-ldflags", "-s -w -X " + versionVar + "=" + version, "-o", dir + "/"}
	cmd := exec.CommandContext(ctx, "go", append(args, pkgs...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, strings.TrimSpace(string(out)))
	}
	bins := make(map[string]string, len(pkgs))
	for _, p := range pkgs {
		b := filepath.Join(dir, path.Base(p))
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("go build %s: no binary: %w", p, err)
		}
		bins[path.Base(p)] = b
	}
	return bins, nil
}

// moduleRoot walks up from the working directory to the directory holding
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}
