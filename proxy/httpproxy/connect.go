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

	"github.com/linkerd-go/linkerd/proxy/tcp"
)

// connect forwards an HTTP/1.1 CONNECT to the original destination (a
// transparent proxy passes it on) and, once that answers 2xx, becomes a byte
// tunnel between client and server.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request, st *reqState) {
	hj, ok := w.(http.Hijacker)
	if !ok || r.ProtoMajor != 1 {
		p.writeError(w, r, http.StatusNotImplemented, errors.New("CONNECT is only proxied over HTTP/1.1"))
		return
	}
	ctx := r.Context()
	upstream, err := p.dialer.Dial(ctx, st.ep)
	if err != nil {
		p.errorHandler(w, r, err)
		return
	}
	defer upstream.Close()

	out := &http.Request{Method: http.MethodConnect, URL: r.URL, Host: r.Host, Header: r.Header.Clone(),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	removeHopByHop(out.Header)
	_ = upstream.SetDeadline(time.Now().Add(30 * time.Second))
	if err := out.Write(upstream); err != nil {
		p.errorHandler(w, r, fmt.Errorf("write CONNECT upstream: %w", err))
		return
	}
	ubr := bufio.NewReader(upstream)
	resp, err := http.ReadResponse(ubr, out)
	if err != nil {
		p.errorHandler(w, r, fmt.Errorf("read CONNECT response: %w", err))
		return
	}
	_ = upstream.SetDeadline(time.Time{})
	st.m.Latency(resp.StatusCode, time.Since(st.start))
	if resp.StatusCode/100 != 2 {
		// Refused: relay the answer as an ordinary response.
		defer resp.Body.Close()
		removeHopByHop(resp.Header)
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, err := io.Copy(w, resp.Body)
		st.finish(resp.StatusCode, resp.Header, nil, err)
		return
	}

	client, cbuf, err := hj.Hijack()
	if err != nil {
		st.finish(resp.StatusCode, resp.Header, nil, err)
		return
	}
	defer client.Close()
	removeHopByHop(resp.Header)
	fmt.Fprintf(cbuf, "HTTP/1.1 %s\r\n", resp.Status)
	_ = resp.Header.Write(cbuf)
	_, _ = cbuf.WriteString("\r\n")
	// Bytes the server sent right after its answer go to the client first.
	if n := ubr.Buffered(); n > 0 {
		b, _ := ubr.Peek(n)
		_, _ = cbuf.Write(b)
	}
	if err := cbuf.Flush(); err != nil {
		st.finish(resp.StatusCode, resp.Header, nil, err)
		return
	}
	st.finish(resp.StatusCode, resp.Header, nil, nil)
	// Bytes the client already sent past its request go to the server first.
	if n := cbuf.Reader.Buffered(); n > 0 {
		b, _ := cbuf.Reader.Peek(n)
		if _, err := upstream.Write(b); err != nil {
			return
		}
	}
	_ = tcp.Forward(context.WithoutCancel(ctx), client, upstream)
}

// hopByHop are the connection-specific headers of RFC 9110 section 7.6.1.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopByHop(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

var _ net.Conn = (*handoffConn)(nil)
