package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd/proxy/pipeline"
	"github.com/linkerd-go/linkerd/proxy/tcp"
)

// connect forwards an HTTP/1.1 CONNECT to its endpoint (a transparent proxy
// passes it on) and, once that answers 2xx, becomes a byte tunnel between
// client and server.
func (h *handoff) connect(w http.ResponseWriter, r *http.Request, x *pipeline.Exchange) {
	hj, ok := w.(http.Hijacker)
	if !ok || r.ProtoMajor != 1 {
		h.answer(w, x, &pipeline.StatusError{Status: http.StatusNotImplemented, Err: errors.New("CONNECT is only proxied over HTTP/1.1")})
		return
	}
	ctx := r.Context()
	f := &connectForwarder{h: h, r: r}
	if err := h.chain.Serve(ctx, x, f); err != nil {
		h.answer(w, x, err)
		return
	}
	defer f.upstream.Close()
	resp := f.resp
	if resp.StatusCode/100 != 2 {
		// Refused: relay the answer as an ordinary response.
		defer resp.Body.Close()
		removeHopByHop(resp.Header)
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, err := io.Copy(w, resp.Body)
		x.Finish(err)
		return
	}

	client, cbuf, err := hj.Hijack()
	if err != nil {
		x.Finish(err)
		return
	}
	defer client.Close()
	removeHopByHop(resp.Header)
	fmt.Fprintf(cbuf, "HTTP/1.1 %s\r\n", resp.Status)
	_ = resp.Header.Write(cbuf)
	_, _ = cbuf.WriteString("\r\n")
	// Bytes the server sent right after its answer go to the client first.
	if n := f.ubr.Buffered(); n > 0 {
		b, _ := f.ubr.Peek(n)
		_, _ = cbuf.Write(b)
	}
	if err := cbuf.Flush(); err != nil {
		x.Finish(err)
		return
	}
	x.Finish(nil)
	// Bytes the client already sent past its request go to the server first.
	if n := cbuf.Reader.Buffered(); n > 0 {
		b, _ := cbuf.Reader.Peek(n)
		if _, err := f.upstream.Write(b); err != nil {
			return
		}
	}
	_ = tcp.Forward(context.WithoutCancel(ctx), client, f.upstream)
}

// answer writes the proxy's answer to a request that failed with err.
func (h *handoff) answer(w http.ResponseWriter, x *pipeline.Exchange, err error) {
	h.log.Debug("request failed", "method", x.Method, "authority", x.Authority, "path", x.Path, "err", err)
	a := x.Fail(0, err)
	for _, f := range a.Fields {
		w.Header().Set(f.Name, strings.ReplaceAll(f.Value, "\n", " "))
	}
	w.WriteHeader(a.Status)
	_, _ = io.WriteString(w, a.Body)
	x.Finish(nil)
}

// connectForwarder is the chain's terminal for a CONNECT: it dials the
// endpoint and reads its answer to the CONNECT.
type connectForwarder struct {
	h        *handoff
	r        *http.Request
	upstream net.Conn
	ubr      *bufio.Reader
	resp     *http.Response
}

// Forward implements pipeline.Forwarder.
func (f *connectForwarder) Forward(ctx context.Context, x *pipeline.Exchange) error {
	upstream, err := f.h.dialer.Dial(ctx, x.Endpoint)
	if err != nil {
		return err
	}
	r := f.r
	out := &http.Request{Method: http.MethodConnect, URL: r.URL, Host: r.Host, Header: r.Header.Clone(),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	removeHopByHop(out.Header)
	for _, fl := range x.Fields {
		out.Header.Set(fl.Name, fl.Value)
	}
	_ = upstream.SetDeadline(time.Now().Add(30 * time.Second))
	if err := out.Write(upstream); err != nil {
		upstream.Close()
		return fmt.Errorf("write CONNECT upstream: %w", err)
	}
	ubr := bufio.NewReader(upstream)
	resp, err := http.ReadResponse(ubr, out)
	if err != nil {
		upstream.Close()
		return fmt.Errorf("read CONNECT response: %w", err)
	}
	_ = upstream.SetDeadline(time.Time{})
	f.upstream, f.ubr, f.resp = upstream, ubr, resp
	x.Responded(resp.StatusCode)
	return nil
}

// removeHopByHop removes the connection-specific fields: those a Connection
// field names and pipeline.HopByHop's.
func removeHopByHop(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for name := range h {
		if pipeline.HopByHop(name) {
			delete(h, name)
		}
	}
}
