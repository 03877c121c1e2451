package cmd

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRunGroup: runGroup returns nil when its context ends and the first
// failure otherwise, and in both cases cancels the other tasks, calls stop
// and waits for every task.
func TestRunGroup(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		fail bool // a task fails instead of the context ending
		want error
	}{
		{"context ends", false, nil},
		{"a task fails", true, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stopped := make(chan struct{})
			var ctxTaskDone, stopTaskDone bool
			tasks := []func(context.Context) error{
				// Ends with the context.
				func(ctx context.Context) error { <-ctx.Done(); ctxTaskDone = true; return nil },
				// Ends only when stop is called, like a gRPC server.
				func(context.Context) error { <-stopped; stopTaskDone = true; return nil },
			}
			if tc.fail {
				tasks = append(tasks, func(context.Context) error { return boom })
			} else {
				time.AfterFunc(20*time.Millisecond, cancel)
			}
			done := make(chan error, 1)
			go func() { done <- runGroup(ctx, quiet, func() { close(stopped) }, tasks...) }()
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Errorf("runGroup = %v, want %v", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("runGroup did not return within 10s")
			}
			if !ctxTaskDone || !stopTaskDone {
				t.Errorf("returned before its tasks: context task done %v, stop task done %v", ctxTaskDone, stopTaskDone)
			}
		})
	}
}
