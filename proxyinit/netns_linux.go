package proxyinit

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetNS runs fn on an OS thread that has joined the network namespace at
// path. Commands fn starts inherit that namespace. The thread returns to its
// original namespace afterwards; if that fails it is left locked so the
// runtime discards it rather than reusing it.
func inNetNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			orig, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				runtime.UnlockOSThread()
				return fmt.Errorf("opening current network namespace: %w", err)
			}
			defer orig.Close()
			target, err := os.Open(path)
			if err != nil {
				runtime.UnlockOSThread()
				return fmt.Errorf("opening network namespace: %w", err)
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				runtime.UnlockOSThread()
				return fmt.Errorf("entering network namespace %s: %w", path, err)
			}
			fnErr := fn()
			if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
				// Stay locked: the thread dies with this goroutine.
				return fmt.Errorf("leaving network namespace %s: %w", path, err)
			}
			runtime.UnlockOSThread()
			return fnErr
		}()
	}()
	return <-errc
}
