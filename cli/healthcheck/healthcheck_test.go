package healthcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/internal/golden"
)

func ok(context.Context, *State) error { return nil }

func fail(msg string) func(context.Context, *State) error {
	return func(context.Context, *State) error { return errors.New(msg) }
}

// runAll runs cats and renders them in every format.
func runAll(t *testing.T, cats []Category, s *State, opts Options) (success bool, outputs map[string]string) {
	t.Helper()
	outputs = map[string]string{}
	var renderers []Renderer
	bufs := map[string]*bytes.Buffer{}
	for _, f := range Outputs {
		bufs[f] = &bytes.Buffer{}
		r, err := NewRenderer(f, bufs[f])
		if err != nil {
			t.Fatal(err)
		}
		renderers = append(renderers, r)
	}
	success = Run(context.Background(), cats, s, opts, func(r Result) {
		for _, rr := range renderers {
			rr.Observe(r)
		}
	})
	for _, rr := range renderers {
		if err := rr.Finish(success); err != nil {
			t.Fatal(err)
		}
	}
	for f, b := range bufs {
		outputs[f] = b.String()
	}
	return success, outputs
}

func TestRunAndRender(t *testing.T) {
	tests := []struct {
		name        string
		cats        []Category
		wantSuccess bool
	}{
		{
			name: "all_pass",
			cats: []Category{
				{ID: "first", Checks: []Check{{Description: "a passes", Run: ok}, {Description: "b passes", Run: ok}}},
				{ID: "second-category", Checks: []Check{{Description: "c passes", Run: ok}}},
			},
			wantSuccess: true,
		},
		{
			name: "warning_and_note",
			cats: []Category{
				{ID: "first", Checks: []Check{
					{Description: "a warns", HintAnchor: "a-hint", Warning: true, Run: fail("a is not quite right\nsecond line")},
					{Description: "b has a note", Run: func(context.Context, *State) error { return Note("just so %s", "you know") }},
					{Description: "c is skipped", Run: func(context.Context, *State) error { return Skip("not applicable") }},
				}},
			},
			wantSuccess: true,
		},
		{
			name: "error_continues",
			cats: []Category{
				{ID: "first", Checks: []Check{
					{Description: "a fails", HintAnchor: "a-hint", Run: fail("a is broken")},
					{Description: "b passes", Run: ok},
				}},
				{ID: "second", Checks: []Check{{Description: "c passes", Run: ok}}},
			},
		},
		{
			name: "fatal_stops",
			cats: []Category{
				{ID: "first", Checks: []Check{
					{Description: "a fails fatally", HintAnchor: "a-hint", Fatal: true, Run: fail("a is broken")},
					{Description: "b never runs", Run: func(context.Context, *State) error { panic("ran after a fatal failure") }},
				}},
				{ID: "second", Checks: []Check{{Description: "c never runs", Run: fail("ran after a fatal failure")}}},
			},
		},
		{
			name: "all_skipped_category",
			cats: []Category{
				{ID: "empty", Checks: []Check{{Description: "skipped", Run: func(context.Context, *State) error { return Skip("x") }}}},
				{ID: "second", Checks: []Check{{Description: "c passes", Run: ok}}},
			},
			wantSuccess: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			success, out := runAll(t, tt.cats, &State{}, Options{HintBaseURL: "https://example.test/checks/#"})
			if success != tt.wantSuccess {
				t.Errorf("success = %v, want %v", success, tt.wantSuccess)
			}
			for _, f := range Outputs {
				golden.Check(t, "render_"+tt.name+"."+f, out[f])
			}
			var parsed JSONResult
			if err := json.Unmarshal([]byte(out[JSONOutput]), &parsed); err != nil {
				t.Fatalf("JSON output does not parse: %v", err)
			}
			if parsed.Success != tt.wantSuccess {
				t.Errorf("JSON success = %v, want %v", parsed.Success, tt.wantSuccess)
			}
			wantStatus := "Status check results are ×\n"
			if tt.wantSuccess {
				wantStatus = "Status check results are √\n"
			}
			if !strings.HasSuffix(out[TableOutput], wantStatus) {
				t.Errorf("table output does not end with %q", wantStatus)
			}
		})
	}
}

func TestRetry(t *testing.T) {
	t.Run("succeeds after retries", func(t *testing.T) {
		attempts := 0
		var retries []Result
		cats := []Category{{ID: "c", Checks: []Check{{
			Description: "eventually ready",
			Retry:       true,
			Run: func(context.Context, *State) error {
				attempts++
				if attempts < 3 {
					return errors.New("not yet")
				}
				return nil
			},
		}}}}
		var final []Result
		success := Run(context.Background(), cats, &State{}, Options{Wait: 10 * time.Second, RetryInterval: time.Millisecond}, func(r Result) {
			if r.Retrying {
				retries = append(retries, r)
			} else {
				final = append(final, r)
			}
		})
		if !success || attempts != 3 || len(retries) != 2 || len(final) != 1 || final[0].Status != StatusSuccess {
			t.Errorf("success=%v attempts=%d retries=%d final=%+v", success, attempts, len(retries), final)
		}
	})

	t.Run("gives up at the deadline", func(t *testing.T) {
		attempts := 0
		cats := []Category{{ID: "c", Checks: []Check{{
			Description: "never ready",
			Retry:       true,
			Run: func(context.Context, *State) error {
				attempts++
				return errors.New("not yet")
			},
		}}}}
		start := time.Now()
		var final Result
		success := Run(context.Background(), cats, &State{}, Options{Wait: 100 * time.Millisecond, RetryInterval: 10 * time.Millisecond}, func(r Result) {
			if !r.Retrying {
				final = r
			}
		})
		elapsed := time.Since(start)
		if success || final.Status != StatusError || final.Err == nil || final.Err.Error() != "not yet" {
			t.Errorf("success=%v final=%+v", success, final)
		}
		if attempts < 2 || elapsed > 5*time.Second {
			t.Errorf("attempts=%d in %v, want several within the wait", attempts, elapsed)
		}
	})

	t.Run("checks without Retry run once", func(t *testing.T) {
		attempts := 0
		cats := []Category{{ID: "c", Checks: []Check{{Description: "once", Run: func(context.Context, *State) error {
			attempts++
			return errors.New("no")
		}}}}}
		Run(context.Background(), cats, &State{}, Options{Wait: time.Second, RetryInterval: time.Millisecond}, nil)
		if attempts != 1 {
			t.Errorf("attempts = %d, want 1", attempts)
		}
	})

	t.Run("cancellation stops the run", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		ran := false
		cats := []Category{
			{ID: "c", Checks: []Check{{Description: "cancels", Retry: true, Run: func(context.Context, *State) error {
				cancel()
				return errors.New("not yet")
			}}}},
			{ID: "d", Checks: []Check{{Description: "after", Run: func(context.Context, *State) error { ran = true; return nil }}}},
		}
		var final []Result
		success := Run(ctx, cats, &State{}, Options{Wait: time.Minute, RetryInterval: time.Minute}, func(r Result) {
			if !r.Retrying {
				final = append(final, r)
			}
		})
		if success || ran || len(final) != 1 || final[0].Status != StatusError {
			t.Errorf("success=%v ran=%v final=%+v", success, ran, final)
		}
	})
}

func TestNewRendererRejectsUnknownFormat(t *testing.T) {
	if _, err := NewRenderer("yaml", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "table, json, short") {
		t.Errorf("NewRenderer(yaml) error = %v", err)
	}
}
