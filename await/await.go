// Package await implements linkerd-await: wait until the local Linkerd proxy
// reports ready on its admin server, then run a command, forwarding signals
// to it and exiting with its exit code. Optionally, once the command is done,
// it asks the proxy to shut down so that Jobs can complete.
package await

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"time"
)

const (
	// DefaultURI is the proxy admin server's readiness endpoint.
	DefaultURI = "http://127.0.0.1:4191/ready"
	// DefaultBackoff is the longest wait between two readiness checks.
	DefaultBackoff = time.Second

	// initialBackoff is the wait after the first failed check; it doubles
	// after each failure up to the configured backoff.
	initialBackoff = 10 * time.Millisecond
	// attemptTimeout bounds one readiness check or shutdown request.
	attemptTimeout = 5 * time.Second
)

// NewHTTPClient returns the client used to talk to the proxy admin server:
// no environment proxies, no kept-alive connections left behind.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
}

// WaitReady polls uri until it answers 200 OK or ctx ends. After each failed
// check it sleeps, starting at 10ms and doubling up to maxBackoff. Failed
// checks are logged at info level.
func WaitReady(ctx context.Context, client *http.Client, uri string, maxBackoff time.Duration, log *slog.Logger) error {
	if maxBackoff <= 0 {
		return fmt.Errorf("backoff must be positive, got %v", maxBackoff)
	}
	delay := min(initialBackoff, maxBackoff)
	// Bounded by ctx: the caller decides how long to wait (possibly forever).
	// last is the last check's answer: one cut short by ctx itself says
	// nothing about the proxy, so the one before it is kept.
	var last error
	for attempt := 1; ; attempt++ {
		err := checkReady(ctx, client, uri)
		if err == nil {
			log.Info("proxy is ready", "uri", uri, "attempts", attempt)
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		log.Info("proxy is not ready", "uri", uri, "attempt", attempt, "error", err, "retry_in", delay)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("waiting for %s: %w (last check: %v)", uri, context.Cause(ctx), last)
		case <-timer.C:
		}
		delay = min(2*delay, maxBackoff)
	}
}

func checkReady(ctx context.Context, client *http.Client, uri string) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return fmt.Errorf("building readiness request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// ShutdownURL returns the admin server's /shutdown endpoint on the same
// scheme and host as readyURI.
func ShutdownURL(readyURI string) (string, error) {
	u, err := url.Parse(readyURI)
	if err != nil {
		return "", fmt.Errorf("parsing %q: %w", readyURI, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute URL", readyURI)
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/shutdown"}).String(), nil
}

// RequestShutdown POSTs to the proxy's shutdown endpoint and expects a 2xx answer.
func RequestShutdown(ctx context.Context, client *http.Client, shutdownURL string) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, shutdownURL, nil)
	if err != nil {
		return fmt.Errorf("building shutdown request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", shutdownURL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: status %s", shutdownURL, resp.Status)
	}
	return nil
}

// Stdio are the streams given to the command.
type Stdio struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// RunCommand runs argv with the given streams, sends every signal received on
// signals to it, and returns its exit code once it exits: its own exit status,
// or 128+N if signal N killed it. It returns an error (and code 0) only when
// the command could not be started.
func RunCommand(ctx context.Context, argv []string, stdio Stdio, signals <-chan os.Signal) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("no command given")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-signals:
			// The only expected failure is that the process already exited,
			// which the next loop iteration observes.
			_ = cmd.Process.Signal(sig)
		case err := <-done:
			if cmd.ProcessState == nil {
				return 0, fmt.Errorf("waiting for %s: %w", argv[0], err)
			}
			return exitCode(cmd.ProcessState), nil
		}
	}
}

// exitCode follows the shell's convention: 128+N for death by signal N.
func exitCode(state *os.ProcessState) int {
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
}
