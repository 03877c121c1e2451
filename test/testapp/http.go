package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/websocket"
)

const (
	// maxSlow bounds /slow.
	maxSlow = 30 * time.Second
	// echoHeaderPrefix marks request headers that /echo reflects.
	echoHeaderPrefix = "X-Test-"
)

// httpServer serves HTTP/1.1 and prior-knowledge cleartext HTTP/2 on one
// listener.
type httpServer struct {
	srv *http.Server
}

// newHTTPServer returns the HTTP server; name is reported by GET /.
func newHTTPServer(name string, delay time.Duration, logger *slog.Logger) *httpServer {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	// Cleartext HTTP/2 with prior knowledge ("h2c"), natively supported by
	// net/http; x/net/http2/h2c is deprecated in its favour.
	protocols.SetUnencryptedHTTP2(true)
	return &httpServer{srv: &http.Server{
		Handler:           delayed(delay, newHTTPHandler(name, logger)),
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}}
}

// Serve serves on ln until Shutdown.
func (s *httpServer) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting, waits for in-flight requests until ctx is done,
// then closes every connection.
func (s *httpServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		// Hijacked (WebSocket) and stuck connections are not tracked by
		// Shutdown's wait; Close cuts what is left.
		s.srv.Close()
	}
	return err
}

// newHTTPHandler returns the request router.
func newHTTPHandler(name string, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "testapp "+name)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { echoHTTP(w, r, logger) })
	mux.HandleFunc("/status/{code}", statusHTTP)
	mux.HandleFunc("/slow", slowHTTP)
	mux.HandleFunc("/headers", headersHTTP)
	mux.Handle("/ws", websocket.Server{
		// Accept any (or no) Origin: the clients are tests, not browsers.
		Handshake: func(*websocket.Config, *http.Request) error { return nil },
		Handler:   echoWebSocket,
	})
	return mux
}

// echoHTTP streams the request body back, reflects selected request
// metadata in response headers and the request trailers as response
// trailers.
func echoHTTP(w http.ResponseWriter, r *http.Request, logger *slog.Logger) {
	rc := http.NewResponseController(w)
	// HTTP/1.x only reads the request body after the response started when
	// full duplex is enabled; HTTP/2 is always full duplex and reports
	// ErrNotSupported here.
	_ = rc.EnableFullDuplex()

	h := w.Header()
	h.Set("X-Echo-Method", r.Method)
	h.Set("X-Echo-Proto", r.Proto)
	h.Set("X-Echo-Host", r.Host)
	for k, vs := range r.Header {
		if strings.HasPrefix(k, echoHeaderPrefix) {
			for _, v := range vs {
				h.Add("X-Echo-Header-"+k, v)
			}
		}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		h.Set("Content-Type", ct)
	} else {
		h.Set("Content-Type", "application/octet-stream")
	}
	// Trailers the client announced are declared up front; others that
	// arrive (possible with HTTP/2) are sent with http.TrailerPrefix.
	declared := make(map[string]bool, len(r.Trailer))
	names := make([]string, 0, len(r.Trailer))
	for k := range r.Trailer {
		declared[k] = true
		names = append(names, k)
	}
	if len(names) > 0 {
		sort.Strings(names)
		h.Set("Trailer", strings.Join(names, ", "))
	}
	// Send the headers now, so clients can stream against the echo; a client
	// that waits for "100 Continue" gets it from the first body read instead,
	// and the headers with the first echoed bytes.
	expectContinue := strings.EqualFold(r.Header.Get("Expect"), "100-continue")
	if !expectContinue {
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
	}

	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				logger.Debug("echo: write", "err", werr)
				return
			}
			if ferr := rc.Flush(); ferr != nil {
				logger.Debug("echo: flush", "err", ferr)
				return
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			logger.Debug("echo: read request body", "err", err)
			return
		}
	}
	for k, vs := range r.Trailer {
		if declared[k] {
			h[k] = vs
		} else {
			h[http.TrailerPrefix+k] = vs
		}
	}
}

// statusHTTP answers /status/{code} with that status code.
func statusHTTP(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.PathValue("code"))
	if err != nil || code < 200 || code > 599 {
		http.Error(w, fmt.Sprintf("invalid status code %q (want 200-599)", r.PathValue("code")), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	// Statuses such as 204 and 304 carry no body; Write then just fails.
	fmt.Fprintf(w, "%d %s\n", code, http.StatusText(code))
}

// slowHTTP answers /slow?ms=N after N milliseconds (at most 30 s), or
// earlier if the request is cancelled.
func slowHTTP(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if err != nil || ms < 0 {
		http.Error(w, "ms must be a non-negative integer", http.StatusBadRequest)
		return
	}
	d := min(time.Duration(ms)*time.Millisecond, maxSlow)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return
	case <-t.C:
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "slept %d ms\n", d.Milliseconds())
}

// headersHTTP returns the request headers as a JSON object of canonical
// names to value lists. Go keeps Host out of the header map, so it is added
// under "Host".
func headersHTTP(w http.ResponseWriter, r *http.Request) {
	hdrs := make(map[string][]string, len(r.Header)+1)
	for k, vs := range r.Header {
		hdrs[k] = vs
	}
	hdrs["Host"] = []string{r.Host}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Echo-Proto", r.Proto)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(hdrs)
}

// wsFrame is one WebSocket message with its frame type.
type wsFrame struct {
	typ  byte
	data []byte
}

// wsFrameCodec sends and receives whole messages, keeping the text/binary
// type.
var wsFrameCodec = websocket.Codec{
	Marshal: func(v any) ([]byte, byte, error) {
		f, ok := v.(wsFrame)
		if !ok {
			return nil, 0, fmt.Errorf("wsFrameCodec: cannot marshal %T", v)
		}
		return f.data, f.typ, nil
	},
	Unmarshal: func(data []byte, typ byte, v any) error {
		f, ok := v.(*wsFrame)
		if !ok {
			return fmt.Errorf("wsFrameCodec: cannot unmarshal into %T", v)
		}
		f.typ = typ
		f.data = data
		return nil
	},
}

// echoWebSocket sends every message back with the same type until the
// client closes.
func echoWebSocket(ws *websocket.Conn) {
	defer ws.Close()
	for {
		var f wsFrame
		if err := wsFrameCodec.Receive(ws, &f); err != nil {
			return
		}
		if err := wsFrameCodec.Send(ws, f); err != nil {
			return
		}
	}
}

// delayed adds d before every response: a uniformly slow backend.
func delayed(d time.Duration, h http.Handler) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		h.ServeHTTP(w, r)
	})
}
