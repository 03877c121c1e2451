// Package tcp forwards opaque byte streams between two connections.
package tcp

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/linkerd-go/linkerd/proxy/internal/bufpool"
)

// Forward copies bytes in both directions until both are done. When one side
// finishes sending (EOF) the other side's write half is closed, so half-closed
// protocols work. Cancelling ctx closes both connections. It returns the first
// error other than a normal end of stream; it does not close the connections
// on return unless ctx was cancelled.
func Forward(ctx context.Context, client, server net.Conn) error {
	stop := context.AfterFunc(ctx, func() {
		client.Close()
		server.Close()
	})
	defer stop()

	errc := make(chan error, 2)
	go func() { errc <- pipe(server, client) }()
	err1 := pipe(client, server)
	err2 := <-errc
	if err1 != nil {
		return err1
	}
	return err2
}

// pipe copies src to dst, then half-closes dst.
func pipe(dst, src net.Conn) error {
	bp := bufpool.Get()
	_, err := io.CopyBuffer(writerOnly{dst}, src, *bp)
	bufpool.Put(bp)
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
	return err
}

// writerOnly hides ReadFrom so CopyBuffer uses the pooled buffer and metered
// wrappers see every byte.
type writerOnly struct{ io.Writer }
