package cmd

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestProfileGolden compares `linkerd profile` outputs and errors with
// testdata/profile_*.golden. Regenerate with: go test ./cli/cmd -run
// TestProfileGolden -update
func TestProfileGolden(t *testing.T) {
	// No kubeconfig: the profiles are named in cluster.local.
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	spec, err := os.ReadFile("testdata/profile/books.swagger.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		stdin string
		code  int
	}{
		{name: "profile_template", args: []string{"profile", "-n", "demo", "--template", "web"}},
		{name: "profile_open_api", args: []string{"profile", "-n", "demo", "--open-api", "testdata/profile/books.swagger.yaml", "web"}},
		{name: "profile_open_api_stdin_json", args: []string{"profile", "--ignore-cluster", "--open-api", "-", "-o", "json", "books"}, stdin: string(spec)},
		{name: "profile_proto", args: []string{"profile", "-n", "demo", "--proto", "testdata/profile/voting.proto", "voting"}},
		{name: "profile_error_missing_file", args: []string{"profile", "--open-api", "testdata/profile/nothere.yaml", "web"}, code: 1},
		{name: "profile_error_bad_open_api", args: []string{"profile", "--open-api", "testdata/profile/bad.yaml", "web"}, code: 1},
		{name: "profile_error_proto_as_open_api", args: []string{"profile", "--open-api", "testdata/profile/voting.proto", "web"}, code: 1},
		{name: "profile_error_bad_proto", args: []string{"profile", "--proto", "testdata/profile/bad_syntax.proto", "web"}, code: 1},
		{name: "profile_error_missing_proto", args: []string{"profile", "--proto", "testdata/profile/nothere.proto", "web"}, code: 1},
		{name: "profile_error_no_source", args: []string{"profile", "web"}, code: 1},
		{name: "profile_error_two_sources", args: []string{"profile", "--template", "--proto", "testdata/profile/voting.proto", "web"}, code: 1},
		{name: "profile_error_bad_name", args: []string{"profile", "--template", "Web_App"}, code: 1},
		{name: "profile_error_no_service", args: []string{"profile", "--template"}, code: 1},
		{name: "profile_error_bad_output", args: []string{"profile", "--proto", "testdata/profile/voting.proto", "-o", "wide", "voting"}, code: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), tt.args, Env{Stdout: &stdout, Stderr: &stderr, Stdin: strings.NewReader(tt.stdin)})
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr: %s)", code, tt.code, stderr.String())
			}
			if code != 0 && (stdout.Len() != 0 || strings.Count(stderr.String(), "\n") != 1) {
				t.Errorf("a failure prints one line on stderr and nothing on stdout; got stdout %q, stderr %q", stdout.String(), stderr.String())
			}
			checkGolden(t, tt.name, code, stdout.String(), stderr.String())
		})
	}
}
