// Package healthcheck runs the checks behind `linkerd check`: categories of
// named checks against a cluster (can the CLI reach the API server, may it
// install the control plane, is the control plane there and healthy, are its
// certificates sound, are the meshed pods' proxies ready), with results
// rendered as Linkerd prints them or as JSON.
//
// A check is a description and a function. Its failure is an error, or only
// a warning; a fatal failure stops the run, because later checks need what it
// looked for. Checks that wait for the cluster to converge (pods becoming
// ready) are retried until a deadline before they are reported as failed.
package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Category IDs, as Linkerd names them.
const (
	KubernetesAPI            = "kubernetes-api"
	KubernetesVersion        = "kubernetes-version"
	PreKubernetesSetup       = "pre-kubernetes-setup"
	LinkerdExistence         = "linkerd-existence"
	LinkerdConfig            = "linkerd-config"
	LinkerdIdentity          = "linkerd-identity"
	LinkerdWebhooksTLS       = "linkerd-webhooks-and-apisvc-tls"
	LinkerdVersion           = "linkerd-version"
	ControlPlaneVersion      = "control-plane-version"
	LinkerdControlPlaneProxy = "linkerd-control-plane-proxy"
	LinkerdDataPlane         = "linkerd-data-plane"
	LinkerdIdentityDataPlane = "linkerd-identity-data-plane"
	LinkerdPolicy            = "linkerd-policy"
)

// DefaultHintBaseURL is prefixed to a check's hint anchor to make its hint URL.
const DefaultHintBaseURL = "https://linkerd.io/2/checks/#"

// DefaultWait is how long checks that wait for the cluster keep retrying.
const DefaultWait = 5 * time.Minute

// DefaultRetryInterval is the pause between two attempts of a retried check.
const DefaultRetryInterval = 2 * time.Second

// Check is one named check.
type Check struct {
	// Description is what the check asserts, as printed ("control plane
	// pods are ready").
	Description string
	// HintAnchor names the check's section in the hints page.
	HintAnchor string
	// Warning makes a failure a warning: reported, but the run still succeeds.
	Warning bool
	// Fatal stops the run when the check fails: later checks depend on it.
	Fatal bool
	// Retry keeps running a failing check until the run's deadline, for
	// conditions the cluster reaches by itself (pods becoming ready).
	Retry bool
	// Run performs the check. A nil error is success; a *SkipError leaves
	// the check out of the results; a *NoteError is success with a remark.
	Run func(ctx context.Context, s *State) error
}

// Category is a named, ordered group of checks.
type Category struct {
	ID     string
	Checks []Check
}

// SkipError is returned by a check that does not apply; the check is left
// out of the results.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// Skip returns a *SkipError.
func Skip(reason string) error { return &SkipError{Reason: reason} }

// NoteError is returned by a check that passed but has something to say;
// the note is printed below the check.
type NoteError struct{ Note string }

func (e *NoteError) Error() string { return e.Note }

// Note returns a *NoteError.
func Note(format string, args ...any) error {
	return &NoteError{Note: fmt.Sprintf(format, args...)}
}

// Status is a check's outcome.
type Status string

// Outcomes, and the "result" values of the JSON output.
const (
	StatusSuccess Status = "success"
	StatusWarning Status = "warning"
	StatusError   Status = "error"
)

// Result is the outcome of one check.
type Result struct {
	Category    string
	Description string
	Status      Status
	// Err is why the check failed; nil on success.
	Err error
	// Note is a remark on a successful check.
	Note string
	// Hint is the URL explaining the check, for failures.
	Hint string
	// Retrying marks an intermediate failure of a retried check: another
	// attempt follows. Only observers see these; they are not final.
	Retrying bool
}

// Observer receives results as checks complete, in order, and the
// intermediate failures of retried checks (Retrying set).
type Observer func(Result)

// Options tune a run.
type Options struct {
	// Wait bounds how long retried checks keep retrying, from the start of
	// the run; zero means DefaultWait.
	Wait time.Duration
	// RetryInterval is the pause between attempts; zero means DefaultRetryInterval.
	RetryInterval time.Duration
	// HintBaseURL prefixes hint anchors; empty means DefaultHintBaseURL.
	HintBaseURL string
}

// Run runs the categories' checks in order against s, reporting each final
// result (and each retry) to observe, and returns whether every check
// succeeded or only warned. A fatal failure stops the run. Cancelling ctx
// fails the running check and stops the run.
func Run(ctx context.Context, categories []Category, s *State, opts Options, observe Observer) bool {
	wait := opts.Wait
	if wait <= 0 {
		wait = DefaultWait
	}
	interval := opts.RetryInterval
	if interval <= 0 {
		interval = DefaultRetryInterval
	}
	base := opts.HintBaseURL
	if base == "" {
		base = DefaultHintBaseURL
	}
	if observe == nil {
		observe = func(Result) {}
	}
	deadline := time.Now().Add(wait)

	success := true
	for _, cat := range categories {
		for _, c := range cat.Checks {
			r, ok := runOne(ctx, cat.ID, c, s, base, deadline, interval, observe)
			if !ok {
				continue // skipped
			}
			observe(r)
			if r.Status == StatusError {
				success = false
				if c.Fatal || ctx.Err() != nil {
					return false
				}
			}
		}
	}
	return success
}

// runOne runs c until it succeeds or, for retried checks, the deadline
// passes. ok is false when the check was skipped.
func runOne(ctx context.Context, category string, c Check, s *State, base string, deadline time.Time, interval time.Duration, observe Observer) (r Result, ok bool) {
	r = Result{Category: category, Description: c.Description}
	for {
		err := ctx.Err()
		if err == nil {
			err = c.Run(ctx, s)
		}
		var skip *SkipError
		if errors.As(err, &skip) {
			return r, false
		}
		var note *NoteError
		if errors.As(err, &note) {
			r.Status, r.Note = StatusSuccess, note.Note
			return r, true
		}
		if err == nil {
			r.Status = StatusSuccess
			return r, true
		}
		r.Err = err
		r.Status = StatusError
		if c.Warning {
			r.Status = StatusWarning
		}
		r.Hint = base + c.HintAnchor
		if !c.Retry || ctx.Err() != nil || time.Now().Add(interval).After(deadline) {
			return r, true
		}
		retry := r
		retry.Retrying = true
		observe(retry)
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}
