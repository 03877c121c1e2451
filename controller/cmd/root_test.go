package cmd

import (
	"io"
	"slices"
	"testing"
)

// TestSubcommands: every component is listed once, in the order help shows.
func TestSubcommands(t *testing.T) {
	root := NewRootCommand(Env{Stdout: io.Discard, Stderr: io.Discard})
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	want := []string{"destination", "identity", "metrics-api", "policy", "policy-validator", "proxy-injector", "sp-validator", "tap", "tap-injector", "web"}
	if !slices.Equal(names, want) {
		t.Fatalf("subcommands %q, want %q", names, want)
	}
}
