// Package admin implements the proxy's admin HTTP server (port 4191 by
// default): Prometheus metrics, liveness and readiness probes, the log
// level, the environment and, when enabled, a shutdown endpoint.
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// maxLogSpecBytes bounds the body of PUT /proxy-log-level.
const maxLogSpecBytes = 64 << 10

// Options configures the admin handler.
type Options struct {
	// Gatherer is served at /metrics; nil means prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Ready reports readiness for /ready; nil means always ready.
	Ready func() bool
	// ShutdownEnabled turns on POST /shutdown (Linkerd's
	// LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED).
	ShutdownEnabled bool
	// Shutdown is called, at most once, after a POST /shutdown has been
	// answered. It must not block until the admin server has stopped (the
	// request is still in flight); typically it cancels a context. A nil
	// Shutdown disables the endpoint.
	Shutdown func()
	// LogLevel is set when the log level is changed with PUT
	// /proxy-log-level; nil means a private variable (the spec can still be
	// read and written, but nothing observes it).
	LogLevel *slog.LevelVar
	// LogSpec is the initial log filter text returned by GET
	// /proxy-log-level.
	LogSpec string
	// Environ is served as a JSON object by /env.json, in the form
	// os.Environ returns. For repeated names the last one wins.
	Environ []string
	// Logger receives the handler's own logs; nil discards them.
	Logger *slog.Logger
}

// NewHandler returns the admin HTTP handler with these routes:
//
//	/metrics          Prometheus metrics from Options.Gatherer
//	/ready            200 "ready\n" or 503 "not ready\n"
//	/live             200 "live\n"
//	/shutdown         POST: 200 "shutdown\n", then Options.Shutdown (404 unless enabled)
//	/proxy-log-level  GET: the current log filter; PUT: set a new one (204)
//	/env.json         the environment as a JSON object
//
// Like Linkerd's proxy, /shutdown, /proxy-log-level and /env.json only
// answer clients connecting from a loopback address; others get 403. Any
// other path is 404.
func NewHandler(o Options) http.Handler {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	gatherer := o.Gatherer
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	level := o.LogLevel
	if level == nil {
		level = new(slog.LevelVar)
	}
	spec := o.LogSpec
	if spec == "" {
		spec = strings.ToLower(level.Level().String())
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", readOnly(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog:      promLogger{logger},
		ErrorHandling: promhttp.ContinueOnError,
	})))
	mux.Handle("/ready", readOnly(readyHandler(o.Ready)))
	mux.Handle("/live", readOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "live\n")
	})))
	sh := &shutdownHandler{logger: logger}
	if o.ShutdownEnabled && o.Shutdown != nil {
		sh.enabled, sh.shutdown = true, sync.OnceFunc(o.Shutdown)
	}
	mux.Handle("/shutdown", sh)
	mux.Handle("/proxy-log-level", loopbackOnly(&logLevelHandler{
		spec:   spec,
		level:  level,
		logger: logger,
	}))
	mux.Handle("/env.json", loopbackOnly(readOnly(envHandler(o.Environ, logger))))
	return mux
}

func readyHandler(ready func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if ready == nil || ready() {
			writeText(w, http.StatusOK, "ready\n")
			return
		}
		writeText(w, http.StatusServiceUnavailable, "not ready\n")
	})
}

type shutdownHandler struct {
	enabled  bool
	shutdown func()
	logger   *slog.Logger
}

func (h *shutdownHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.enabled {
		http.NotFound(w, r)
		return
	}
	if !isLoopback(r.RemoteAddr) {
		forbidden(w, r)
		return
	}
	if r.Method != http.MethodPost {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	writeText(w, http.StatusOK, "shutdown\n")
	// Make sure the client has its answer before shutdown starts.
	if err := http.NewResponseController(w).Flush(); err != nil {
		h.logger.Debug("admin: flushing shutdown response", "error", err)
	}
	h.logger.Info("admin: shutdown requested", "client", r.RemoteAddr)
	h.shutdown()
}

type logLevelHandler struct {
	mu     sync.Mutex
	spec   string
	level  *slog.LevelVar
	logger *slog.Logger
}

func (h *logLevelHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.mu.Lock()
		spec := h.spec
		h.mu.Unlock()
		writeText(w, http.StatusOK, spec)
	case http.MethodPut:
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLogSpecBytes))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("log level spec longer than %d bytes\n", maxLogSpecBytes))
				return
			}
			writeText(w, http.StatusBadRequest, "reading request body failed\n")
			return
		}
		text := strings.TrimSpace(string(body))
		if text == "" {
			writeText(w, http.StatusBadRequest, "empty log level spec\n")
			return
		}
		spec, err := proxyenv.ParseLogSpec(text)
		if err != nil {
			writeText(w, http.StatusBadRequest, oneLine(err.Error())+"\n")
			return
		}
		h.mu.Lock()
		h.spec = spec.Raw
		h.level.Set(spec.Level)
		h.mu.Unlock()
		h.logger.Info("admin: log level changed", "spec", spec.Raw, "level", spec.Level, "client", r.RemoteAddr)
		w.WriteHeader(http.StatusNoContent)
	default:
		methodNotAllowed(w, http.MethodGet, http.MethodHead, http.MethodPut)
	}
}

// envHandler serves environ as a JSON object. The environment does not
// change, so the document is rendered once.
func envHandler(environ []string, logger *slog.Logger) http.Handler {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			m[k] = v
		}
	}
	doc, err := json.Marshal(m)
	if err != nil {
		// A map of strings always marshals; keep a valid answer regardless.
		logger.Error("admin: encoding environment", "error", err)
		doc = []byte("{}")
	}
	doc = append(doc, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(doc)
	})
}

// loopbackOnly answers 403 to clients that are not on a loopback address.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopback(r.RemoteAddr) {
			forbidden(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readOnly answers 405 to methods other than GET and HEAD.
func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, http.MethodGet, http.MethodHead)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLoopback reports whether remoteAddr (an http.Request's RemoteAddr,
// "ip:port") is a loopback address, including IPv4-mapped IPv6 ones.
func isLoopback(remoteAddr string) bool {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap().IsLoopback()
	}
	if a, err := netip.ParseAddr(remoteAddr); err == nil {
		return a.Unmap().IsLoopback()
	}
	return false
}

func forbidden(w http.ResponseWriter, r *http.Request) {
	writeText(w, http.StatusForbidden, r.URL.Path+" is only served to clients on a loopback address\n")
}

func methodNotAllowed(w http.ResponseWriter, allow ...string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeText(w, http.StatusMethodNotAllowed, "method not allowed\n")
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

var lineBreaks = strings.NewReplacer("\r", " ", "\n", " ")

func oneLine(s string) string {
	return lineBreaks.Replace(s)
}

// promLogger adapts slog to promhttp's error logger.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) {
	p.l.Error("admin: serving metrics", "error", strings.TrimSpace(fmt.Sprintln(v...)))
}
