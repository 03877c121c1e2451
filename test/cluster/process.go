package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// process is a child process whose exit is observed by one goroutine.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done is closed
}

// startProcess starts bin with args, output to out. The child gets
// SIGKILL when the test binary dies (Pdeathsig), even if it dies without
// running cleanups (a panic or a -timeout), so no etcd or kube-apiserver
// outlives its test binary.
//
// Pdeathsig is delivered when the *thread* that forked the child exits,
// so the goroutine that starts the child stays locked to its thread until
// the child has exited; Go only ends a thread when a goroutine exits while
// locked to it, which this one never does (it unlocks first).
func startProcess(name, bin string, args []string, out io.Writer) (*process, error) {
	return startProcessEnv(name, bin, args, out, childEnv())
}

// startProcessEnv is startProcess with the child's environment.
func startProcessEnv(name, bin string, args []string, out io.Writer, env []string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return p, nil
}

// exited reports whether the process has exited, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM, waits up to grace, then kills the process.
func (p *process) stop(grace time.Duration) error {
	if ok, _ := p.exited(); ok {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// childEnv is the environment for etcd and kube-apiserver: ours minus
// variables they would read as configuration (etcd maps ETCD_* to flags)
// or that would point their clients elsewhere.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "ETCD_"), strings.HasPrefix(k, "ETCDCTL_"),
			k == "KUBECONFIG", k == "KUBERNETES_SERVICE_HOST", k == "KUBERNETES_SERVICE_PORT",
			k == "HTTP_PROXY", k == "HTTPS_PROXY", k == "http_proxy", k == "https_proxy":
			continue
		}
		env = append(env, kv)
	}
	return env
}
