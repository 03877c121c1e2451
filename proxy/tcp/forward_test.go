package tcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// pair returns two ends of a loopback TCP connection.
func pair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-ch
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func TestForwardHalfClose(t *testing.T) {
	client, proxyFront := pair(t)
	proxyBack, server := pair(t)
	done := make(chan error, 1)
	go func() { done <- Forward(context.Background(), proxyFront, proxyBack) }()

	// The server echoes until the client's EOF, then sends a trailer and closes:
	// that only works if the client's half-close crossed the proxy.
	go func() {
		_, _ = io.Copy(server, server)
		_, _ = server.Write([]byte("bye"))
		_ = server.CloseWrite()
	}()
	payload := make([]byte, 1<<20)
	_, _ = rand.Read(payload)
	go func() {
		_, _ = client.Write(payload)
		_ = client.CloseWrite()
	}()
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	want := append(payload, "bye"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Forward: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Forward did not return after both directions ended")
	}
}

func TestForwardCancel(t *testing.T) {
	_, proxyFront := pair(t)
	proxyBack, _ := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Forward(ctx, proxyFront, proxyBack) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Forward ignored cancellation")
	}
}
