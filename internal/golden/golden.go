// Package golden compares test output with golden files,
// testdata/<name>.golden, which the tests rewrite when run with -update:
//
//	go test ./some/pkg -update
//
// Only tests import it: the -update flag is registered with the test
// binary's flags.
package golden

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// Update reports whether the tests run with -update.
func Update() bool { return *update }

// Path returns the golden file of name: testdata/<name>.golden.
func Path(name string) string { return filepath.Join("testdata", name+".golden") }

// Check compares got with testdata/<name>.golden, first rewriting the file
// with got when the tests run with -update.
func Check(t testing.TB, name, got string) {
	t.Helper()
	path := Path(name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if got == string(want) {
		return
	}
	msg := fmt.Sprintf("output differs from %s (run with -update if intended); first difference:\n%s", path, FirstDiff(got, string(want)))
	if len(got)+len(want) <= 4<<10 {
		msg += fmt.Sprintf("\ngot:\n%s\nwant:\n%s", got, want)
	}
	t.Error(msg)
}

// Result formats a command's exit code, stdout and stderr as one text.
func Result(code int, stdout, stderr string) string {
	return fmt.Sprintf("exit: %d\n--- stdout\n%s--- stderr\n%s", code, stdout, stderr)
}

// FirstDiff shows the first differing line of two texts.
func FirstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return "(none)"
}
