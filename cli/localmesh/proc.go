package localmesh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// stopGrace is how long stopProc waits after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
	// killWait bounds the wait after SIGKILL.
	killWait = 5 * time.Second
	// cmdTimeout bounds every short-lived command (ip, linkerd-init).
	cmdTimeout = 30 * time.Second
)

// start starts p detached from the CLI: in its own session, with stdout and
// stderr appended to p.Log and stdin from /dev/null. It records the pid and
// start time in p.
func start(p *Proc) error {
	logf, err := os.OpenFile(p.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.Role, err)
	}
	defer logf.Close()
	// Not CommandContext: the process outlives the CLI on purpose.
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Role, err)
	}
	p.PID = cmd.Process.Pid
	st, err := procStartTime(p.PID)
	if err != nil {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		return fmt.Errorf("start %s: %w", p.Role, err)
	}
	p.StartTime = st
	// The child is reaped by init once the CLI exits; release our handle.
	if err := cmd.Process.Release(); err != nil {
		return fmt.Errorf("start %s: %w", p.Role, err)
	}
	return nil
}

// procStartTime reads the start time of pid (field 22 of /proc/PID/stat).
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return parseStartTime(string(b))
}

// parseStartTime extracts the start time from the contents of
// /proc/PID/stat, whose second field (comm) may hold spaces and parentheses.
func parseStartTime(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat: no ')'")
	}
	// After comm: field 3 (state) onwards; start time is field 22.
	fields := strings.Fields(stat[i+1:])
	const idx = 22 - 3
	if len(fields) <= idx {
		return 0, fmt.Errorf("malformed /proc stat: %d fields after comm", len(fields))
	}
	v, err := strconv.ParseUint(fields[idx], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed /proc stat start time: %w", err)
	}
	return v, nil
}

// procState reads the state letter (field 3) of pid.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// alive reports whether the process recorded in p still runs (same pid and
// start time, not a zombie).
func alive(p *Proc) bool {
	if p.PID <= 0 {
		return false
	}
	st, err := procStartTime(p.PID)
	if err != nil || st != p.StartTime {
		return false
	}
	return procState(p.PID) != "Z"
}

// stop terminates the process recorded in p and its process group: SIGTERM,
// then SIGKILL after a grace period. A process that is gone (or whose pid
// was reused) is left alone.
func stop(ctx context.Context, p *Proc) error {
	if !alive(p) {
		return nil
	}
	// The process leads its session and process group (Setsid).
	signal := func(sig syscall.Signal) {
		if err := syscall.Kill(-p.PID, sig); err != nil {
			_ = syscall.Kill(p.PID, sig)
		}
	}
	signal(syscall.SIGTERM)
	if waitGone(ctx, p, stopGrace) {
		return nil
	}
	signal(syscall.SIGKILL)
	if waitGone(ctx, p, killWait) {
		return nil
	}
	return fmt.Errorf("%s (pid %d) still running after SIGKILL", p.Role, p.PID)
}

// waitGone polls until p is no longer alive, for at most d.
func waitGone(ctx context.Context, p *Proc, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for alive(p) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// run runs a short command and returns an error with its output on failure.
func run(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
