package testnet

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// threadNetNSPath names the network namespace of the calling OS thread.
const threadNetNSPath = "/proc/thread-self/ns/net"

// runInNetNS runs fn on a dedicated OS thread that has joined the network
// namespace at nsPath, and returns fn's error.
//
// fn runs on a fresh goroutine locked to its thread. Only work fn does on that
// goroutine happens inside the namespace: sockets it creates stay there for
// their whole life, but goroutines it starts run elsewhere. After fn returns
// the thread switches back to its original namespace; if that fails the
// goroutine exits still locked, so the Go runtime destroys the thread instead
// of reusing it in the wrong namespace.
//
// The Go runtime never clones new threads from a locked thread (it uses a
// template thread instead), so the namespace does not leak to other threads.
func runInNetNS(nsPath string, fn func() error) error {
	type result struct {
		err   error
		panic any
	}
	ch := make(chan result, 1)
	go func() {
		var res result
		defer func() {
			if p := recover(); p != nil {
				res.panic = p
			}
			ch <- res
		}()
		res.err = enterAndRun(nsPath, fn)
	}()
	res := <-ch
	if res.panic != nil {
		panic(res.panic)
	}
	return res.err
}

// enterAndRun is the body of runInNetNS; it must run on a goroutine that
// exits when it returns.
func enterAndRun(nsPath string, fn func() error) error {
	target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", nsPath, err)
	}
	defer unix.Close(target)

	runtime.LockOSThread()
	orig, err := unix.Open(threadNetNSPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current network namespace: %w", err)
	}
	defer unix.Close(orig)

	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		// The thread did not move; it is still usable.
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", nsPath, err)
	}
	// Deferred calls run in reverse order: this restore runs before orig is
	// closed.
	defer func() {
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Keep the thread locked: when this goroutine exits the runtime
			// terminates the thread rather than handing it to other goroutines.
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// probeNetNS reports whether this process may create and join network
// namespaces, by unsharing one on a throwaway thread and switching back.
func probeNetNS() error {
	return runOnThrowawayThread(func() error {
		orig, err := unix.Open(threadNetNSPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open current network namespace: %w", err)
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("restore network namespace: %w", err)
		}
		return nil
	})
}

// runOnThrowawayThread runs fn on a locked thread that is destroyed afterwards,
// whatever fn did to it.
func runOnThrowawayThread(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with this goroutine.
		ch <- fn()
	}()
	return <-ch
}
