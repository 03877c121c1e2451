package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

// DefaultEnforcedHost is the Host header pattern the server accepts by
// default: localhost, IP literals and the web Service's names, so that a
// page on another site cannot reach the dashboard through DNS rebinding.
const DefaultEnforcedHost = `^(localhost|web\.linkerd-viz\.svc(\.cluster\.local)?)(:\d+)?$`

// DefaultWindow is the stats' time window when a request names none, as
// `linkerd viz stat`'s default.
const DefaultWindow = time.Minute

// WorkloadKinds are the resource kinds the dashboard lists as workloads.
var WorkloadKinds = []string{"deployment", "statefulset", "daemonset", "job"}

// Config configures the dashboard server.
type Config struct {
	Metrics MetricsClient
	// Tap is the tap service, for the live calls; nil disables them.
	Tap vizv1.TapServiceClient
	// GrafanaURL is the user's Grafana (its dashboards from viz/grafana
	// imported); "" hides the dashboard's Grafana links.
	GrafanaURL string
	// EnforcedHost, when set, is the pattern of Host headers served
	// (besides IP literals); others get 400.
	EnforcedHost *regexp.Regexp
	// Assets are the built dashboard (index.html, assets/); nil means the
	// embedded build.
	Assets fs.FS
	Log    *slog.Logger
}

// Handler serves the dashboard and its API.
type Handler struct {
	cfg Config
	mux *http.ServeMux
	// tapSlots holds a token per live-calls stream running.
	tapSlots chan struct{}
}

// New returns the dashboard's handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Metrics == nil {
		return nil, errors.New("web: no metrics API client")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Assets == nil {
		a, err := Assets()
		if err != nil {
			return nil, err
		}
		cfg.Assets = a
	}
	if _, err := fs.Stat(cfg.Assets, "index.html"); err != nil {
		return nil, fmt.Errorf("web: the dashboard's assets have no index.html (run make web): %w", err)
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), tapSlots: make(chan struct{}, MaxTapStreams)}
	h.mux.HandleFunc("GET /api/config", h.config)
	h.mux.HandleFunc("GET /api/namespaces", h.namespaces)
	h.mux.HandleFunc("GET /api/namespaces/{ns}/workloads", h.workloads)
	h.mux.HandleFunc("GET /api/namespaces/{ns}/pods", h.pods)
	h.mux.HandleFunc("GET /api/namespaces/{ns}/edges", h.edges)
	h.mux.HandleFunc("GET /api/namespaces/{ns}/routes", h.routes)
	h.mux.HandleFunc("GET /api/namespaces/{ns}/tap", h.tap)
	h.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no API %s %s", r.Method, r.URL.Path))
	})
	files := http.FileServerFS(cfg.Assets)
	h.mux.HandleFunc("GET /assets/", func(w http.ResponseWriter, r *http.Request) {
		// Vite names built files by their content's hash.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		files.ServeHTTP(w, r)
	})
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, cfg.Assets, "index.html")
	})
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.hostAllowed(r.Host) {
		http.Error(w, fmt.Sprintf("host %q is not allowed (see the web server's -enforced-host)", r.Host), http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) hostAllowed(host string) bool {
	if h.cfg.EnforcedHost == nil {
		return true
	}
	name := host
	if hn, _, err := net.SplitHostPort(host); err == nil {
		name = hn
	}
	if net.ParseIP(strings.Trim(name, "[]")) != nil {
		return true
	}
	return h.cfg.EnforcedHost.MatchString(host)
}

// configResponse is what the dashboard learns of its server.
type configResponse struct {
	GrafanaURL string `json:"grafanaUrl,omitempty"`
	// Tap says whether the live calls are available.
	Tap           bool     `json:"tap"`
	WorkloadKinds []string `json:"workloadKinds"`
	Window        string   `json:"window"`
}

func (h *Handler) config(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, configResponse{
		GrafanaURL:    strings.TrimRight(h.cfg.GrafanaURL, "/"),
		Tap:           h.cfg.Tap != nil,
		WorkloadKinds: WorkloadKinds,
		Window:        DefaultWindow.String(),
	})
}

func (h *Handler) namespaces(w http.ResponseWriter, r *http.Request) {
	window, err := windowParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	rows, err := h.cfg.Metrics.StatSummary(r.Context(), StatQuery{Kind: "namespace", Window: window})
	h.reply(w, r, rows, err)
}

func (h *Handler) workloads(w http.ResponseWriter, r *http.Request) {
	ns, window, err := nsAndWindow(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	kind := r.URL.Query().Get("kind")
	if kind == "" {
		kind = "deployment"
	}
	if !isWorkloadKind(kind) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("unknown workload kind %q (want one of %s)", kind, strings.Join(WorkloadKinds, ", ")))
		return
	}
	rows, err := h.cfg.Metrics.StatSummary(r.Context(), StatQuery{Kind: kind, Namespace: ns, Window: window})
	h.reply(w, r, rows, err)
}

func (h *Handler) pods(w http.ResponseWriter, r *http.Request) {
	ns, window, err := nsAndWindow(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	q := StatQuery{Kind: "pod", Namespace: ns, Window: window}
	if wl := r.URL.Query().Get("workload"); wl != "" {
		owner, err := workloadParam(ns, wl)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		q.Owner = &owner
	}
	rows, err := h.cfg.Metrics.StatSummary(r.Context(), q)
	h.reply(w, r, rows, err)
}

func (h *Handler) edges(w http.ResponseWriter, r *http.Request) {
	ns, window, err := nsAndWindow(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	kind := r.URL.Query().Get("kind")
	if kind == "" {
		kind = "deployment"
	}
	if !isWorkloadKind(kind) && kind != "pod" {
		writeError(w, http.StatusBadRequest, fmt.Errorf("unknown resource kind %q for edges", kind))
		return
	}
	rows, err := h.cfg.Metrics.Edges(r.Context(), ns, kind, window)
	h.reply(w, r, rows, err)
}

func (h *Handler) routes(w http.ResponseWriter, r *http.Request) {
	ns, window, err := nsAndWindow(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	res, err := workloadParam(ns, r.URL.Query().Get("workload"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	q := RouteQuery{Resource: res, Window: window}
	switch d := r.URL.Query().Get("direction"); d {
	case "", "inbound":
	case "outbound":
		q.Outbound = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("unknown direction %q (want inbound or outbound)", d))
		return
	}
	rows, err := h.cfg.Metrics.TopRoutes(r.Context(), q)
	h.reply(w, r, rows, err)
}

// reply writes rows, or the metrics API's error as 502 (the dashboard
// shows it instead of an empty table that would read as "no traffic").
func (h *Handler) reply(w http.ResponseWriter, r *http.Request, rows any, err error) {
	if err != nil {
		h.cfg.Log.Warn("metrics API request failed", "path", r.URL.Path, "error", err)
		writeError(w, http.StatusBadGateway, fmt.Errorf("metrics API: %w", err))
		return
	}
	// No rows is [], never null.
	switch r := rows.(type) {
	case []Stat:
		if r == nil {
			rows = []Stat{}
		}
	case []Edge:
		if r == nil {
			rows = []Edge{}
		}
	case []Route:
		if r == nil {
			rows = []Route{}
		}
	}
	writeJSON(w, rows)
}

// dnsLabel is a Kubernetes name (RFC 1123 subdomain, which covers labels).
var dnsName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

func nsAndWindow(r *http.Request) (string, time.Duration, error) {
	ns := r.PathValue("ns")
	if !dnsName.MatchString(ns) {
		return "", 0, fmt.Errorf("invalid namespace name %q", ns)
	}
	window, err := windowParam(r)
	return ns, window, err
}

func windowParam(r *http.Request) (time.Duration, error) {
	s := r.URL.Query().Get("window")
	if s == "" {
		return DefaultWindow, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 10*time.Second || d > 24*time.Hour {
		return 0, fmt.Errorf("invalid window %q (want a duration from 10s to 24h, e.g. 1m)", s)
	}
	return d, nil
}

// workloadParam parses "kind/name" in namespace ns.
func workloadParam(ns, s string) (Resource, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok || !isWorkloadKind(kind) || !dnsName.MatchString(name) {
		return Resource{}, fmt.Errorf("invalid workload %q (want KIND/NAME, KIND one of %s)", s, strings.Join(WorkloadKinds, ", "))
	}
	return Resource{Kind: kind, Namespace: ns, Name: name}, nil
}

func isWorkloadKind(kind string) bool {
	for _, k := range WorkloadKinds {
		if k == kind {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		// The client went away; nothing to tell it.
		return
	}
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
