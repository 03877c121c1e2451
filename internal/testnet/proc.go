package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// DefaultGracePeriod is how long Stop waits after SIGTERM before SIGKILL.
	DefaultGracePeriod = 5 * time.Second
	// maxOutput caps the captured output of one process; older output is
	// dropped first.
	maxOutput = 8 << 20
	// defaultWaitOutput bounds WaitOutput when its context has no deadline.
	defaultWaitOutput = 30 * time.Second
	// killWait bounds the wait for a process after SIGKILL.
	killWait = 10 * time.Second
)

// ProcSpec describes a long-running process to start in a pod.
type ProcSpec struct {
	// Name labels the process in logs; it defaults to the base name of Path.
	Name string
	// Path is the program; without a slash it is looked up in PATH.
	Path string
	// Args are the program's arguments, without the program name.
	Args []string
	// Env is appended to the test process's environment.
	Env []string
	// User, if set, runs the process as this uid/gid instead of root.
	User *Credential
	// Dir is the working directory; empty means the test's.
	Dir string
	// Stdin is the process's standard input; nil means /dev/null.
	Stdin io.Reader
	// GracePeriod is how long Stop waits after SIGTERM before SIGKILL;
	// zero means DefaultGracePeriod.
	GracePeriod time.Duration
}

// Proc is a process started in a pod by Pod.Start.
type Proc struct {
	// Name labels the process in logs.
	Name string

	pod   *Pod
	cmd   *exec.Cmd
	out   *outputBuffer
	grace time.Duration

	done    chan struct{}
	waitErr error // set before done is closed

	mu       sync.Mutex
	stopping bool // Stop sent SIGTERM
	killed   bool // Stop sent SIGKILL

	stopOnce sync.Once
	stopErr  error
}

// Start starts a long-running process in the pod. Its stdout and stderr are
// captured; they are logged with t.Log if the test fails. The process is
// stopped (SIGTERM, then SIGKILL after the grace period) when the test ends.
func (p *Pod) Start(t testing.TB, spec ProcSpec) *Proc {
	t.Helper()
	name := spec.Name
	if name == "" {
		name = filepath.Base(spec.Path)
	}
	grace := spec.GracePeriod
	if grace <= 0 {
		grace = DefaultGracePeriod
	}
	// The process is bound to Stop and the network's cleanup, not to a
	// context.
	cmd := p.CommandWith(context.Background(), ExecOptions{User: spec.User, Env: spec.Env, Dir: spec.Dir}, spec.Path, spec.Args...)
	out := &outputBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Stdin = spec.Stdin
	proc := &Proc{
		Name:  name,
		pod:   p,
		cmd:   cmd,
		out:   out,
		grace: grace,
		done:  make(chan struct{}),
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testnet: pod %s: start %s: %v", p.Name, name, err)
	}
	go func() {
		proc.waitErr = cmd.Wait()
		close(proc.done)
	}()
	if !p.network.track(proc) {
		_ = proc.Stop()
		t.Fatalf("testnet: pod %s: start %s: network already closed", p.Name, name)
	}
	t.Cleanup(func() {
		err := proc.Stop()
		if t.Failed() || os.Getenv("TESTNET_LOGS") != "" {
			t.Logf("testnet: output of %s in pod %s (stop: %v):\n%s", name, p.Name, err, proc.Output())
		}
	})
	return proc
}

// Pid returns the process ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process wrote to stdout and stderr so far (the
// most recent 8 MiB).
func (p *Proc) Output() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns the error of exec.Cmd.Wait.
func (p *Proc) Wait() error {
	<-p.done
	return p.waitErr
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return fmt.Errorf("%s: signal %v: %w", p.Name, sig, os.ErrProcessDone)
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: signal %v: %w", p.Name, sig, err)
	}
	return nil
}

// Stop sends SIGTERM to the process group, waits up to the grace period,
// then sends SIGKILL. It returns nil if the process exited successfully or
// because of Stop's SIGTERM, and an error if it exited otherwise or had to be
// killed. Stop is idempotent.
func (p *Proc) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop() })
	return p.stopErr
}

func (p *Proc) stop() error {
	select {
	case <-p.done:
		return p.exitError()
	default:
	}
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	p.signalGroup(syscall.SIGTERM)
	grace := time.NewTimer(p.grace)
	defer grace.Stop()
	select {
	case <-p.done:
		return p.exitError()
	case <-grace.C:
	}
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	p.signalGroup(syscall.SIGKILL)
	kill := time.NewTimer(killWait)
	defer kill.Stop()
	select {
	case <-p.done:
		return fmt.Errorf("%s: did not exit within %v of SIGTERM; killed", p.Name, p.grace)
	case <-kill.C:
		return fmt.Errorf("%s: still running %v after SIGKILL", p.Name, killWait)
	}
}

// signalGroup signals the process group the process leads.
func (p *Proc) signalGroup(sig syscall.Signal) {
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(-pid, sig); err != nil {
		_ = syscall.Kill(pid, sig)
	}
}

// exitError interprets the exit status once the process is done.
func (p *Proc) exitError() error {
	err := p.waitErr
	if err == nil {
		return nil
	}
	p.mu.Lock()
	stopping := p.stopping
	p.mu.Unlock()
	var ee *exec.ExitError
	if stopping && errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", p.Name, err)
}

// WaitOutput waits until the process's output contains substr. It fails if
// the process exits first or ctx ends; without a deadline on ctx it waits at
// most 30 seconds.
func (p *Proc) WaitOutput(ctx context.Context, substr string) error {
	ctx, cancel := context.WithTimeout(ctx, defaultWaitOutput)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Contains(p.out.String(), substr) {
			return nil
		}
		select {
		case <-p.done:
			if strings.Contains(p.out.String(), substr) {
				return nil
			}
			return fmt.Errorf("%s exited (%v) before printing %q", p.Name, p.waitErr, substr)
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %q in output: %w", p.Name, substr, ctx.Err())
		case <-tick.C:
		}
	}
}

// outputBuffer is a concurrency-safe buffer that keeps the most recent
// maxOutput bytes.
type outputBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if len(p) > maxOutput {
		p = p[len(p)-maxOutput:]
		b.buf.Reset()
		b.truncated = true
	}
	if b.buf.Len()+len(p) > maxOutput {
		keep := bytes.Clone(b.buf.Bytes()[b.buf.Len()+len(p)-maxOutput:])
		b.buf.Reset()
		b.buf.Write(keep)
		b.truncated = true
	}
	b.buf.Write(p)
	return n, nil
}

func (b *outputBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return "[... earlier output dropped ...]\n" + b.buf.String()
	}
	return b.buf.String()
}
