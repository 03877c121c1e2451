package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// TestRunUsage covers the command line; building is tested in
// internal/images.
func TestRunUsage(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no output dir", nil, "-o DIR is required"},
		{"extra argument", []string{"-o", t.TempDir(), "proxy"}, "unexpected arguments"},
		{"unknown image", []string{"-o", t.TempDir(), "-images", "proxy,nginx"}, `unknown image "nginx"`},
		{"bad flag", []string{"-output", "x"}, "flag provided but not defined"},
		{"empty tag", []string{"-o", t.TempDir(), "-tag", "", "-images", "controller"}, "no tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
	if err := run(context.Background(), []string{"-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
}
