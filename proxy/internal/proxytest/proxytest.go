// Package proxytest holds test support shared by the proxy's protocol
// packages: loopback listeners and raw client connections.
package proxytest

import (
	"bufio"
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// Serve listens on a new loopback address and runs handle on each accepted
// connection, in its own goroutine, until the test ends. At cleanup it
// cancels handle's context, closes the listener and every connection still
// being handled, and waits for the handlers to return. Cleanups registered
// before Serve run after that; those registered after it run before.
func Serve(t testing.TB, handle func(ctx context.Context, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				}()
				handle(ctx, c)
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Dial opens a raw client connection to addr, closed when the test ends,
// with a 10 s deadline so a stuck exchange fails instead of hanging.
func Dial(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}
