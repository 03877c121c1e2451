package localmesh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// ErrNoWorkload is wrapped by the errors of Delete and ExecCommand for a
// workload the mesh does not have.
var ErrNoWorkload = errors.New("no such workload")

// Delete removes workload ns/name started by Run: it stops its supervisor
// (and with it the application) and its proxy, deletes its namespace and
// pod directory, and drops it from its Service's endpoints; a Service no
// workload backs any more goes too. The control plane's pods cannot be
// deleted (linkerd local down removes everything).
func (m *Mesh) Delete(ctx context.Context, ns, name string) error {
	if err := CheckPrivileges(); err != nil {
		return err
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	s, err := m.load()
	if err != nil {
		return err
	}
	w := s.workload(ns, name)
	if w == nil {
		return fmt.Errorf("%w %s/%s (see linkerd local status)", ErrNoWorkload, ns, name)
	}
	if w.ControlPlane {
		return fmt.Errorf("%s/%s is part of the control plane; linkerd local down removes the whole mesh", ns, name)
	}
	rerr := m.removeWorkload(context.WithoutCancel(ctx), s, w)
	if w.Service != "" && !s.backed(w.Namespace, w.Service) {
		delete(s.Services, w.Namespace+"/"+w.Service)
	}
	if err := saveState(m.statePath(), s); err != nil {
		return errors.Join(rerr, err)
	}
	if err := m.publish(context.WithoutCancel(ctx)); err != nil {
		return errors.Join(rerr, err)
	}
	if err := os.RemoveAll(m.podDir(w)); err != nil {
		return errors.Join(rerr, fmt.Errorf("remove pod directory: %w", err))
	}
	if rerr != nil {
		return rerr
	}
	m.logf("workload %s deleted", w.Key())
	return nil
}

// backed reports whether a workload of s backs Service ns/name.
func (s *State) backed(ns, name string) bool {
	for _, w := range s.Workloads {
		if w.Namespace == ns && w.Service == name {
			return true
		}
	}
	return false
}

// ExecCommand returns the command line that runs args inside workload
// ns/name, as kubectl exec runs them in a container: in the network and
// mount namespaces of its running application, so that Service names
// resolve through the pod's hosts file, as root. A workload without a
// running application (the control plane's, or one being restarted) gets
// its network namespace only.
func (m *Mesh) ExecCommand(ns, name string, args []string) ([]string, error) {
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, errors.New("no command to run")
	}
	s, err := m.load()
	if err != nil {
		return nil, err
	}
	w := s.workload(ns, name)
	if w == nil {
		return nil, fmt.Errorf("%w %s/%s (see linkerd local status)", ErrNoWorkload, ns, name)
	}
	if !netnsExists(w.NetNS) {
		return nil, fmt.Errorf("workload %s: its network namespace %s is gone", w.Key(), w.NetNS)
	}
	if w.App != nil {
		if st, err := readAppStatus(m.appStatusPath(w)); err == nil && st.Running() && inNetNSOf(st.PID, w.NetNS) {
			return append([]string{"nsenter", "-t", strconv.Itoa(st.PID), "-n", "-m", "--"}, args...), nil
		}
	}
	return append([]string{"nsenter", "--net=" + NetNSPath(w.NetNS), "--"}, args...), nil
}
