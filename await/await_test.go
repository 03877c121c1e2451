package await

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeAdmin is a proxy admin server: /ready fails notReady times, then
// answers 200; /shutdown records POSTs and answers shutdownStatus.
type fakeAdmin struct {
	mu             sync.Mutex
	notReady       int
	readyCalls     int
	shutdownCalls  int
	shutdownMethod string
	shutdownStatus int
}

func newFakeAdmin(t *testing.T, notReady int) (*fakeAdmin, *httptest.Server) {
	t.Helper()
	a := &fakeAdmin{notReady: notReady, shutdownStatus: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.readyCalls++
		if a.readyCalls <= a.notReady {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("/shutdown", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.shutdownCalls++
		a.shutdownMethod = r.Method
		w.WriteHeader(a.shutdownStatus)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return a, srv
}

func (a *fakeAdmin) counts() (ready, shutdown int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.readyCalls, a.shutdownCalls
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestWaitReady(t *testing.T) {
	tests := []struct {
		name     string
		notReady int
	}{
		{name: "ready at once", notReady: 0},
		{name: "ready after three failures", notReady: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admin, srv := newFakeAdmin(t, tt.notReady)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := WaitReady(ctx, NewHTTPClient(), srv.URL+"/ready", 20*time.Millisecond, discardLog()); err != nil {
				t.Fatalf("WaitReady: %v", err)
			}
			if ready, _ := admin.counts(); ready != tt.notReady+1 {
				t.Errorf("/ready called %d times, want %d", ready, tt.notReady+1)
			}
		})
	}
}

func TestWaitReadyGivesUpWithContext(t *testing.T) {
	admin, srv := newFakeAdmin(t, 1<<30)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := WaitReady(ctx, NewHTTPClient(), srv.URL+"/ready", 20*time.Millisecond, discardLog())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady error = %v, want deadline exceeded", err)
	}
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("error %q does not report the last check's status", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %v to give up", elapsed)
	}
	// Delays of 10ms, 20ms, 20ms, ... leave room for several checks in 150ms.
	if ready, _ := admin.counts(); ready < 3 {
		t.Errorf("/ready called %d times, want at least 3", ready)
	}
}

func TestWaitReadyBacksOffExponentially(t *testing.T) {
	admin, srv := newFakeAdmin(t, 1<<30)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	// With a large cap the delays are 10, 20, 40, 80, 160ms: about 5 checks in
	// 400ms. A fixed 10ms interval would make about 40.
	_ = WaitReady(ctx, NewHTTPClient(), srv.URL+"/ready", time.Hour, discardLog())
	if ready, _ := admin.counts(); ready < 3 || ready > 8 {
		t.Errorf("/ready called %d times in 400ms, want 3..8 with exponential backoff", ready)
	}
}

func TestWaitReadyRejectsZeroBackoff(t *testing.T) {
	if err := WaitReady(context.Background(), NewHTTPClient(), "http://127.0.0.1:1/ready", 0, discardLog()); err == nil {
		t.Fatal("want error for zero backoff")
	}
}

func TestShutdownURL(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "http://127.0.0.1:4191/ready", want: "http://127.0.0.1:4191/shutdown"},
		{in: "http://localhost:4191/ready?x=1#f", want: "http://localhost:4191/shutdown"},
		{in: "https://[::1]:4191/some/path", want: "https://[::1]:4191/shutdown"},
		{in: "/ready", wantErr: true},
		{in: "://bad", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ShutdownURL(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ShutdownURL(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestRequestShutdown(t *testing.T) {
	admin, srv := newFakeAdmin(t, 0)
	if err := RequestShutdown(context.Background(), NewHTTPClient(), srv.URL+"/shutdown"); err != nil {
		t.Fatalf("RequestShutdown: %v", err)
	}
	if admin.shutdownMethod != http.MethodPost {
		t.Errorf("method = %s, want POST", admin.shutdownMethod)
	}
	admin.shutdownStatus = http.StatusNotFound
	if err := RequestShutdown(context.Background(), NewHTTPClient(), srv.URL+"/shutdown"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("RequestShutdown error = %v, want one reporting 404", err)
	}
}

func TestRunCommandExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   int
	}{
		{name: "success", script: "exit 0", want: 0},
		{name: "exit 3", script: "exit 3", want: 3},
		{name: "killed by SIGTERM", script: "kill -TERM $$", want: 128 + int(syscall.SIGTERM)},
		{name: "killed by SIGKILL", script: "kill -KILL $$", want: 128 + int(syscall.SIGKILL)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := RunCommand(context.Background(), []string{"sh", "-c", tt.script}, Stdio{}, nil)
			if err != nil {
				t.Fatalf("RunCommand: %v", err)
			}
			if code != tt.want {
				t.Errorf("exit code = %d, want %d", code, tt.want)
			}
		})
	}
}

func TestRunCommandStdio(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code, err := RunCommand(context.Background(), []string{"sh", "-c", "read line; echo \"out:$line\"; echo err >&2"},
		Stdio{Stdin: strings.NewReader("hello\n"), Stdout: &stdout, Stderr: &stderr}, nil)
	if err != nil || code != 0 {
		t.Fatalf("RunCommand = %d, %v", code, err)
	}
	if stdout.String() != "out:hello\n" || stderr.String() != "err\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

func TestRunCommandNotFound(t *testing.T) {
	_, err := RunCommand(context.Background(), []string{filepath.Join(t.TempDir(), "missing")}, Stdio{}, nil)
	if err == nil {
		t.Fatal("want error for a missing command")
	}
}

func TestRunCommandForwardsSignals(t *testing.T) {
	// The child announces on stdout once its handler is installed, then waits
	// (at most ~5s) for SIGTERM, which it turns into exit code 7.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	script := `trap 'exit 7' TERM; echo ready; i=0; while [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; exit 1`
	signals := make(chan os.Signal, 1)
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := RunCommand(context.Background(), []string{"sh", "-c", script}, Stdio{Stdout: w}, signals)
		done <- result{code, err}
	}()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("reading child's announcement: %q, %v", line, err)
	}
	signals <- syscall.SIGTERM
	res := <-done
	w.Close()
	if res.err != nil || res.code != 7 {
		t.Errorf("RunCommand = %d, %v; want 7 (SIGTERM forwarded to the child's trap)", res.code, res.err)
	}
}

// runMain runs Main with env as the environment.
func runMain(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code = Main(ctx, args, getenv, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestMainCommand(t *testing.T) {
	t.Run("waits, runs, shuts down, propagates exit code", func(t *testing.T) {
		admin, srv := newFakeAdmin(t, 2)
		code, _, stderr := runMain(t, nil, "--uri", srv.URL+"/ready", "--backoff", "20ms", "-S", "--", "sh", "-c", "exit 3")
		if code != 3 {
			t.Errorf("exit code = %d, want 3; stderr: %s", code, stderr)
		}
		ready, shutdown := admin.counts()
		if ready != 3 {
			t.Errorf("/ready called %d times, want 3", ready)
		}
		if shutdown != 1 || admin.shutdownMethod != http.MethodPost {
			t.Errorf("/shutdown called %d times with %q, want once with POST", shutdown, admin.shutdownMethod)
		}
	})

	t.Run("no shutdown without -S", func(t *testing.T) {
		admin, srv := newFakeAdmin(t, 0)
		code, stdout, _ := runMain(t, nil, "-u", srv.URL+"/ready", "echo", "hi")
		if code != 0 || stdout != "hi\n" {
			t.Errorf("exit code %d, stdout %q; want 0, %q", code, stdout, "hi\n")
		}
		if _, shutdown := admin.counts(); shutdown != 0 {
			t.Errorf("/shutdown called %d times without -S", shutdown)
		}
	})

	t.Run("failed shutdown is not fatal", func(t *testing.T) {
		admin, srv := newFakeAdmin(t, 0)
		admin.shutdownStatus = http.StatusInternalServerError
		code, _, stderr := runMain(t, nil, "-u", srv.URL+"/ready", "-S", "sh", "-c", "exit 0")
		if code != 0 {
			t.Errorf("exit code = %d, want 0", code)
		}
		if !strings.Contains(stderr, "could not shut down the proxy") {
			t.Errorf("shutdown failure not logged: %s", stderr)
		}
	})

	t.Run("port flag replaces the uri port", func(t *testing.T) {
		admin, srv := newFakeAdmin(t, 0)
		port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
		code, _, stderr := runMain(t, nil, "--port", port, "true")
		if code != 0 {
			t.Errorf("exit code = %d; stderr: %s", code, stderr)
		}
		if ready, _ := admin.counts(); ready != 1 {
			t.Errorf("/ready called %d times, want 1", ready)
		}
	})

	t.Run("disabled by environment skips waiting", func(t *testing.T) {
		for _, name := range []string{EnvDisabled, EnvLinkerdDisabled} {
			admin, srv := newFakeAdmin(t, 1<<30)
			code, _, _ := runMain(t, map[string]string{name: "1"}, "--uri", srv.URL+"/ready", "--timeout", "5s", "sh", "-c", "exit 4")
			if code != 4 {
				t.Errorf("%s: exit code = %d, want 4", name, code)
			}
			if ready, _ := admin.counts(); ready != 0 {
				t.Errorf("%s: /ready called %d times, want 0", name, ready)
			}
		}
	})

	t.Run("timeout fails without running the command", func(t *testing.T) {
		_, srv := newFakeAdmin(t, 1<<30)
		marker := filepath.Join(t.TempDir(), "ran")
		code, _, stderr := runMain(t, nil, "--uri", srv.URL+"/ready", "--backoff", "10ms", "--timeout", "100ms", "touch", marker)
		if code != ExitNotReady {
			t.Errorf("exit code = %d, want %d", code, ExitNotReady)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Error("command ran although the proxy never became ready")
		}
		if !strings.Contains(stderr, "proxy did not become ready") {
			t.Errorf("timeout not reported: %s", stderr)
		}
	})

	t.Run("no command only waits", func(t *testing.T) {
		admin, srv := newFakeAdmin(t, 1)
		code, _, _ := runMain(t, nil, "--uri", srv.URL+"/ready", "--backoff", "10ms", "--timeout", "5s")
		if code != 0 {
			t.Errorf("exit code = %d, want 0", code)
		}
		if ready, _ := admin.counts(); ready != 2 {
			t.Errorf("/ready called %d times, want 2", ready)
		}
	})

	t.Run("command not found", func(t *testing.T) {
		_, srv := newFakeAdmin(t, 0)
		code, _, stderr := runMain(t, nil, "--uri", srv.URL+"/ready", filepath.Join(t.TempDir(), "missing"))
		if code != ExitStartFailed {
			t.Errorf("exit code = %d, want %d; stderr: %s", code, ExitStartFailed, stderr)
		}
	})

	t.Run("verbose logs checks", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			env  map[string]string
		}{
			{args: []string{"-v"}},
			{env: map[string]string{EnvVerbose: "true"}},
		} {
			_, srv := newFakeAdmin(t, 1)
			args := append(tc.args, "--uri", srv.URL+"/ready", "--backoff", "10ms", "true")
			_, _, stderr := runMain(t, tc.env, args...)
			if !strings.Contains(stderr, "proxy is not ready") || !strings.Contains(stderr, "proxy is ready") {
				t.Errorf("args %v env %v: checks not logged: %s", tc.args, tc.env, stderr)
			}
		}
		_, srv := newFakeAdmin(t, 1)
		_, _, stderr := runMain(t, nil, "--uri", srv.URL+"/ready", "--backoff", "10ms", "true")
		if stderr != "" {
			t.Errorf("quiet run logged: %s", stderr)
		}
	})
}

func TestMainUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "unknown flag", args: []string{"--nope", "true"}},
		{name: "shutdown without command", args: []string{"-S"}},
		{name: "bad duration", args: []string{"--backoff", "soon", "true"}},
		{name: "zero backoff", args: []string{"--backoff", "0", "true"}},
		{name: "negative timeout", args: []string{"--timeout", "-1s", "true"}},
		{name: "relative uri", args: []string{"--uri", "/ready", "true"}},
		{name: "bad port", args: []string{"--port", "0", "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runMain(t, nil, tt.args...)
			if code != ExitUsage {
				t.Errorf("exit code = %d, want %d", code, ExitUsage)
			}
			if !strings.HasPrefix(stderr, "linkerd-await: ") {
				t.Errorf("stderr = %q, want a linkerd-await: error", stderr)
			}
		})
	}
}

func TestMainHelp(t *testing.T) {
	code, stdout, _ := runMain(t, nil, "--help")
	if code != 0 || !strings.Contains(stdout, "--shutdown") {
		t.Errorf("--help: exit %d, output %q", code, stdout)
	}
}

func TestRunSignalWhileWaiting(t *testing.T) {
	_, srv := newFakeAdmin(t, 1<<30)
	signals := make(chan os.Signal, 1)
	signals <- syscall.SIGINT
	marker := filepath.Join(t.TempDir(), "ran")
	opts := Options{URI: srv.URL + "/ready", Backoff: 10 * time.Millisecond, Command: []string{"touch", marker}}
	code := Run(context.Background(), opts, Stdio{}, signals, NewHTTPClient(), discardLog())
	if want := 128 + int(syscall.SIGINT); code != want {
		t.Errorf("exit code = %d, want %d", code, want)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("command ran after a signal during the wait")
	}
}

func TestIsTrue(t *testing.T) {
	for in, want := range map[string]bool{"": false, "0": false, "false": false, "1": true, "true": true, "yes": true} {
		if got := isTrue(in); got != want {
			t.Errorf("isTrue(%q) = %v, want %v", in, got, want)
		}
	}
}
