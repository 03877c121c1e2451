package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// bannerLine is what the banner server sends as soon as a client connects.
const bannerLine = "220 testapp ready\r\n"

// maxAcceptBackoff bounds the pause after a temporary Accept error.
const maxAcceptBackoff = time.Second

// streamServer serves raw TCP connections with a handler and tracks them,
// so Shutdown can close them.
type streamServer struct {
	name   string
	logger *slog.Logger
	handle func(net.Conn, *slog.Logger)

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newStreamServer(name string, logger *slog.Logger, handle func(net.Conn, *slog.Logger)) *streamServer {
	return &streamServer{
		name:   name,
		logger: logger.With("server", name),
		handle: handle,
		conns:  make(map[net.Conn]struct{}),
	}
}

// Serve accepts connections on ln until Shutdown; it returns nil after
// Shutdown.
func (s *streamServer) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()

	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			// Out of file descriptors is worth waiting out.
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(backoff)
				backoff = min(2*backoff, maxAcceptBackoff)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 5 * time.Millisecond
		if !s.track(conn) {
			conn.Close()
			return nil
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(conn)
			defer conn.Close()
			s.logger.Debug("connection", "peer", conn.RemoteAddr().String())
			s.handle(conn, s.logger)
		}()
	}
}

// track registers conn and its handler goroutine unless the server is
// closed.
func (s *streamServer) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *streamServer) untrack(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, conn)
}

// Shutdown stops accepting and closes every connection at once: raw TCP has
// no way to tell a client to finish. It waits for the handlers until ctx is
// done.
func (s *streamServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s handlers still running: %w", s.name, ctx.Err())
	}
}

// closeWriter is a connection that can half-close.
type closeWriter interface {
	CloseWrite() error
}

// halfClose shuts down the write side of conn if it can.
func halfClose(conn net.Conn, logger *slog.Logger) {
	if cw, ok := conn.(closeWriter); ok {
		if err := cw.CloseWrite(); err != nil {
			logger.Debug("close write", "err", err)
		}
	}
}

// echoConn writes back everything it reads; after the client's EOF it
// finishes writing and then half-closes.
func echoConn(conn net.Conn, logger *slog.Logger) {
	if _, err := io.Copy(conn, conn); err != nil {
		logger.Debug("echo", "err", err)
		return
	}
	halfClose(conn, logger)
}

// bannerConn speaks first with bannerLine, then echoes each line back.
func bannerConn(conn net.Conn, logger *slog.Logger) {
	if _, err := io.WriteString(conn, bannerLine); err != nil {
		logger.Debug("banner", "err", err)
		return
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	for {
		// A line longer than the buffer comes back in pieces
		// (bufio.ErrBufferFull), which is still an echo.
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			if _, werr := conn.Write(line); werr != nil {
				logger.Debug("banner echo", "err", werr)
				return
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			halfClose(conn, logger)
			return
		default:
			logger.Debug("banner read", "err", err)
			return
		}
	}
}
