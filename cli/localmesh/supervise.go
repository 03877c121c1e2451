package localmesh

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Supervision. Each workload started by Run has a supervisor: a detached
// process (the CLI's `local supervise`, Config.Supervisor) recorded in the
// state as the pod's "supervisor" process, so that, like every process of
// the mesh, it is owned by the state file and stopped by pid by Down. It
// plays the kubelet's part for the pod's one container, with restartPolicy
// Always:
//
//   - it starts the application as its child (in the pod's network
//     namespace, with the mesh's hosts file over /etc/hosts), so that it
//     sees it exit; the child gets SIGKILL if the supervisor dies;
//   - the application is ready once a socket listens on the workload's port
//     in the pod (a tcpSocket probe; at once when it has no port); the
//     supervisor then marks its endpoint ready in the store;
//   - when the application exits, the supervisor marks the endpoint not
//     ready at once (destination pushes a remove to the proxies), and
//     restarts it after a backoff doubling from restartBackoffMin to
//     restartBackoffMax (reset after a run of restartBackoffReset);
//   - it reports the application's pid, readiness and restart count in the
//     pod's app status file (AppStatus), which Status shows;
//   - it watches the pod's proxy too: when the proxy dies, it marks the
//     endpoint not ready at once and restarts the proxy (at most once per
//     proxyRestartMin, doubling to proxyRestartMax while it keeps dying);
//     the endpoint is ready again once the proxy answers /ready and the
//     application listens;
//   - on SIGTERM (Down, or a failed Run removing the pod) it stops the
//     application, SIGKILL after appStopGrace, and exits without
//     restarting it.
const (
	restartBackoffMin   = time.Second
	restartBackoffMax   = time.Minute
	restartBackoffReset = 2 * time.Minute
	probeInterval       = 100 * time.Millisecond
	proxyRestartMin     = time.Second
	proxyRestartMax     = 30 * time.Second
	// appStopGrace is shorter than stopGrace, so that the supervisor
	// has stopped its application before Down resorts to SIGKILL.
	appStopGrace = stopGrace - time.Second

	roleSupervisor = "supervisor"
	roleApp        = "app"
	roleProxy      = "proxy"
)

// AppStatus is what a workload's supervisor reports about its application.
type AppStatus struct {
	// PID and StartTime identify the running application; zero when it
	// is not running.
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"startTime,omitempty"`
	// Ready is whether the application listens on its port.
	Ready bool `json:"ready"`
	// Restarts counts the restarts after an exit.
	Restarts int `json:"restarts"`
	// LastExit describes the last exit ("exit status 3", "signal:
	// killed"); empty if the application never exited.
	LastExit   string    `json:"lastExit,omitempty"`
	LastExitAt time.Time `json:"lastExitAt,omitzero"`
}

// Running reports whether the application recorded in st still runs.
func (st AppStatus) Running() bool {
	return alive(&Proc{PID: st.PID, StartTime: st.StartTime})
}

// appStatusPath is the status file of w's application.
func (m *Mesh) appStatusPath(w *Workload) string { return filepath.Join(m.podDir(w), "app.json") }

// LoadAppStatus reads the application status of workload ns/name of the
// mesh whose state is in stateDir.
func LoadAppStatus(stateDir, ns, name string) (AppStatus, error) {
	return readAppStatus(filepath.Join(stateDir, "pods", ns+"."+name, "app.json"))
}

func readAppStatus(path string) (AppStatus, error) {
	var st AppStatus
	b, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("read app status: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("parse app status %s: %w", path, err)
	}
	return st, nil
}

// Supervise runs and restarts the application of workload ns/name until ctx
// is done; see the Supervision comment. It is what the process Run records as
// the pod's supervisor runs.
func (m *Mesh) Supervise(ctx context.Context, ns, name string) error {
	if err := CheckPrivileges(); err != nil {
		return err
	}
	s, err := m.load()
	if err != nil {
		return err
	}
	w := s.workload(ns, name)
	if w == nil || w.App == nil || len(w.App.Args) == 0 {
		return fmt.Errorf("no supervised workload %s/%s in %s", ns, name, m.statePath())
	}
	// The application's parent-death signal is tied to the thread that
	// started it: keep every start on this goroutine's thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sv := &supervisor{
		m:    m,
		w:    w,
		path: m.appStatusPath(w),
		log:  slog.New(slog.NewTextHandler(m.cfg.Log, nil)).With("pod", w.Key()),
	}
	// A supervisor restarted by Up (its predecessor died, and the
	// application with it) restarts the application: count it.
	if prev, err := readAppStatus(sv.path); err == nil {
		sv.st.Restarts = prev.Restarts + 1
		sv.st.LastExit, sv.st.LastExitAt = prev.LastExit, prev.LastExitAt
		if prev.PID != 0 { // it was running when its supervisor died
			sv.st.LastExit, sv.st.LastExitAt = "killed with its supervisor", time.Now().UTC()
		}
	}
	return sv.run(ctx)
}

// supervisor runs one workload's application; its methods run on the
// goroutine of Supervise.
type supervisor struct {
	m    *Mesh
	w    *Workload
	path string
	log  *slog.Logger
	st   AppStatus

	// The proxy's restarts: when the last one was, and the wait before
	// the next.
	proxyRestartedAt time.Time
	proxyBackoff     time.Duration
}

func (sv *supervisor) run(ctx context.Context) error {
	backoff := restartBackoffMin
	for {
		started := time.Now()
		exit := sv.runOnce(ctx)
		if ctx.Err() != nil {
			sv.log.Info("stopped")
			return nil
		}
		sv.st.PID, sv.st.StartTime, sv.st.Ready = 0, 0, false
		sv.st.LastExit, sv.st.LastExitAt = exit, time.Now().UTC()
		sv.save()
		// Out of the endpoints before the backoff.
		sv.publish(ctx)
		if time.Since(started) >= restartBackoffReset {
			backoff = restartBackoffMin
		}
		sv.log.Warn("the application exited; restarting it", "exit", exit, "in", backoff)
		select {
		case <-ctx.Done():
			sv.log.Info("stopped")
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, restartBackoffMax)
		sv.st.Restarts++
	}
}

// runOnce starts the application and returns when it has exited
// (describing how), or when ctx is done and it has been stopped.
func (sv *supervisor) runOnce(ctx context.Context) string {
	app := sv.w.App
	logf, err := os.OpenFile(app.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Sprintf("cannot open its log: %v", err)
	}
	defer logf.Close()
	cmd := exec.Command(app.Args[0], app.Args[1:]...)
	cmd.Env = app.Env
	if cmd.Env == nil { // a state from before RunSpec.Env
		cmd.Env = appEnv(nil)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// Same process group as the supervisor, so that Down's signal to the
	// group reaches it too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(logf, "linkerd local: cannot start the application: %v\n", err)
		return fmt.Sprintf("cannot start: %v", err)
	}
	sv.st.PID = cmd.Process.Pid
	sv.st.StartTime, _ = procStartTime(cmd.Process.Pid)
	sv.st.Ready = false
	sv.save()
	sv.log.Info("started the application", "pid", sv.st.PID, "restarts", sv.st.Restarts)

	// Owned by runOnce: it ends when the application does, and every
	// return below has received from done.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	ready := false
	setReady := func() {
		ready = true
		sv.st.Ready = true
		sv.save()
		sv.publish(ctx)
		sv.log.Info("the application is ready", "pid", sv.st.PID)
	}
	if len(sv.w.AppPorts()) == 0 {
		setReady()
	}
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return exitString(err)
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			var err error
			select {
			case err = <-done:
			case <-time.After(appStopGrace):
				_ = cmd.Process.Kill()
				err = <-done
			}
			sv.log.Info("stopped the application", "exit", exitString(err))
			return "stopped"
		case <-tick.C:
			if !sv.proxyUp(ctx) {
				if ready {
					ready = false
					sv.st.Ready = false
					sv.save()
					sv.publish(ctx) // out of the endpoints while the proxy is down
				}
				continue
			}
			if !ready && inNetNSOf(sv.st.PID, sv.w.NetNS) && listeningOnAll(sv.st.PID, sv.w.AppPorts()) {
				if ok, _ := proxyReady(ctx, sv.w); ok {
					setReady()
				}
			}
		}
	}
}

// save writes the status file; a failure is logged (the status is for
// humans and for Run's first wait).
func (sv *supervisor) save() {
	b, err := json.Marshal(sv.st)
	if err == nil {
		err = writeFileAtomic(sv.path, append(b, '\n'), 0o644)
	}
	if err != nil {
		sv.log.Error("writing the app status", "err", err)
	}
}

// publish regenerates the store from the new readiness.
func (sv *supervisor) publish(ctx context.Context) {
	if err := sv.m.publish(ctx); err != nil {
		sv.log.Error("updating the store", "err", err)
	}
}

// exitString describes how a process ended.
func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.String()
	}
	return err.Error()
}

// inNetNSOf reports whether process pid is in the named network namespace
// (the application enters it right after it starts).
func inNetNSOf(pid int, netns string) bool {
	a, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return false
	}
	b, err := os.Stat(NetNSPath(netns))
	return err == nil && os.SameFile(a, b)
}

// listening reports whether a TCP socket listens on port in the network
// namespace of process pid.
func listening(pid, port int) bool {
	for _, f := range []string{"tcp", "tcp6"} {
		fh, err := os.Open("/proc/" + strconv.Itoa(pid) + "/net/" + f)
		if err != nil {
			continue
		}
		ok := listensOn(bufio.NewScanner(fh), port)
		fh.Close()
		if ok {
			return true
		}
	}
	return false
}

// listeningOnAll reports whether process pid's network namespace has a
// listener on every one of ports.
func listeningOnAll(pid int, ports []int) bool {
	for _, p := range ports {
		if !listening(pid, p) {
			return false
		}
	}
	return true
}

// tcpListen is the LISTEN state in /proc/net/tcp.
const tcpListen = "0A"

// listensOn scans the lines of /proc/net/tcp{,6} for a listening socket on
// port.
func listensOn(sc *bufio.Scanner, port int) bool {
	for sc.Scan() {
		// sl local_address rem_address st ...
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != tcpListen {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
			return true
		}
	}
	return false
}

// proxyUp reports whether the pod's proxy runs; when it does not, it
// restarts it (with backoff) and reports false until the next check.
func (sv *supervisor) proxyUp(ctx context.Context) bool {
	proxy := sv.proxyProc()
	if proxy == nil || alive(proxy) {
		return true // nothing to watch, or alive
	}
	// Reap it if it was our child (a proxy this supervisor restarted).
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(proxy.PID, &ws, syscall.WNOHANG, nil)
	if time.Since(sv.proxyRestartedAt) < sv.proxyBackoff {
		return false
	}
	sv.log.Warn("the proxy is not running; restarting it", "pid", proxy.PID)
	if err := sv.restartProxy(ctx); err != nil {
		sv.log.Error("restarting the proxy", "err", err)
	}
	sv.proxyRestartedAt = time.Now()
	sv.proxyBackoff = min(max(2*sv.proxyBackoff, proxyRestartMin), proxyRestartMax)
	return false
}

// proxyProc returns the pod's proxy as the state file records it now
// (local up may have restarted it), or nil.
func (sv *supervisor) proxyProc() *Proc {
	s, err := loadState(sv.m.statePath())
	if err != nil || s == nil {
		return nil
	}
	if w := s.workload(sv.w.Namespace, sv.w.Name); w != nil {
		for _, p := range w.Procs {
			if p.Role == roleProxy {
				return p
			}
		}
	}
	return nil
}

// restartProxy starts the pod's proxy again and records it in the state,
// under the state lock, unless it runs again (local up restarted it) or the
// mesh is going down (no state any more, or ctx done).
func (sv *supervisor) restartProxy(ctx context.Context) error {
	unlock, err := sv.m.lockCtx(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := loadState(sv.m.statePath())
	if err != nil || s == nil {
		return err
	}
	w := s.workload(sv.w.Namespace, sv.w.Name)
	if w == nil {
		return nil
	}
	for _, p := range w.Procs {
		if p.Role != roleProxy || alive(p) {
			continue
		}
		if err := start(p); err != nil {
			return err
		}
		sv.log.Info("restarted the proxy", "pid", p.PID)
		return saveState(sv.m.statePath(), s)
	}
	return nil
}
