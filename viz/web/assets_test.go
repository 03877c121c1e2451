package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/internal/golden"
)

// TestAssetsUpToDate checks that the committed build in dist/ was built
// from the committed sources in app/: testdata/app-build.golden records a
// hash of both, which `make web` rewrites after building (it runs this
// test with -update). Editing app/ without rebuilding, or dist/ by hand,
// fails here, without needing Node.js.
func TestAssetsUpToDate(t *testing.T) {
	sources := treeHash(t, "app", func(rel string, d fs.DirEntry) bool {
		if d.IsDir() {
			return rel != "node_modules"
		}
		return true
	})
	built := treeHash(t, "dist", func(string, fs.DirEntry) bool { return true })
	golden.Check(t, "app-build", "sources "+sources+"\ndist "+built+"\n")
}

// treeHash hashes the names and contents of the files under dir that keep
// accepts (a directory it refuses is skipped whole).
func treeHash(t *testing.T, dir string, keep func(rel string, d fs.DirEntry) bool) string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == "." {
			return nil
		}
		if !keep(filepath.ToSlash(rel), d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		// Line endings as committed, whatever a checkout did to them.
		b = []byte(strings.ReplaceAll(string(b), "\r\n", "\n"))
		sum := sha256.Sum256(b)
		h.Write([]byte(f + " " + hex.EncodeToString(sum[:]) + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}
