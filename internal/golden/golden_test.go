package golden

import "testing"

func TestFirstDiff(t *testing.T) {
	for _, tt := range []struct{ got, want, diff string }{
		{"a\nb\n", "a\nb\n", "(none)"},
		{"a\nb\n", "a\nc\n", "line 2:\n got: b\nwant: c"},
		{"a\n", "a\nmore\n", "line 2:\n got: \nwant: more"},
	} {
		if d := FirstDiff(tt.got, tt.want); d != tt.diff {
			t.Errorf("FirstDiff(%q, %q) = %q, want %q", tt.got, tt.want, d, tt.diff)
		}
	}
}

func TestResult(t *testing.T) {
	if got, want := Result(1, "out\n", "Error: x\n"), "exit: 1\n--- stdout\nout\n--- stderr\nError: x\n"; got != want {
		t.Errorf("Result = %q, want %q", got, want)
	}
}

// TestCheck compares with testdata/example.golden.
func TestCheck(t *testing.T) {
	Check(t, "example", "a golden file\n")
}
