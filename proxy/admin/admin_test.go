package admin

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

const (
	loopback4   = "127.0.0.1:40000"
	loopback6   = "[::1]:40000"
	loopbackMap = "[::ffff:127.0.0.2]:40000"
	remote4     = "10.42.0.7:40000"
	remote6     = "[fd00::7]:40000"
)

type fixture struct {
	handler   http.Handler
	shutdowns atomic.Int32
	level     *slog.LevelVar
	ready     atomic.Bool
}

func newFixture(t *testing.T, shutdownEnabled bool) *fixture {
	t.Helper()
	f := &fixture{level: new(slog.LevelVar)}
	f.ready.Store(true)
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "request_total", Help: "Requests."})
	c.Add(3)
	reg.MustRegister(c)
	f.handler = NewHandler(Options{
		Gatherer:        reg,
		Ready:           f.ready.Load,
		ShutdownEnabled: shutdownEnabled,
		Shutdown:        func() { f.shutdowns.Add(1) },
		LogLevel:        f.level,
		LogSpec:         "warn,linkerd=info",
		Environ:         []string{"LINKERD2_PROXY_LOG=warn,linkerd=info", "HOME=/root", "A=1", "A=2", "EMPTY=", "junk"},
	})
	return f
}

func (f *fixture) do(method, path, remote, body string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		name            string
		shutdownEnabled bool
		notReady        bool
		method, path    string
		remote          string
		body            string
		wantStatus      int
		wantBody        string // exact, unless wantContains
		wantContains    string
		wantType        string
		wantAllow       string
		wantShutdowns   int32
	}{
		// Open to everyone.
		{name: "live", method: "GET", path: "/live", remote: remote4, wantStatus: 200, wantBody: "live\n", wantType: "text/plain; charset=utf-8"},
		{name: "live head", method: "HEAD", path: "/live", remote: remote4, wantStatus: 200, wantBody: "live\n"},
		{name: "live post", method: "POST", path: "/live", remote: loopback4, wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "ready", method: "GET", path: "/ready", remote: remote6, wantStatus: 200, wantBody: "ready\n"},
		{name: "not ready", notReady: true, method: "GET", path: "/ready", remote: remote4, wantStatus: 503, wantBody: "not ready\n"},
		{name: "metrics", method: "GET", path: "/metrics", remote: remote4, wantStatus: 200, wantContains: "\nrequest_total 3\n"},
		{name: "metrics delete", method: "DELETE", path: "/metrics", remote: remote4, wantStatus: 405, wantAllow: "GET, HEAD"},

		// Unknown paths.
		{name: "root", method: "GET", path: "/", remote: loopback4, wantStatus: 404},
		{name: "unknown", method: "GET", path: "/logs.jsonx", remote: loopback4, wantStatus: 404},
		{name: "trailing slash", method: "GET", path: "/ready/", remote: loopback4, wantStatus: 404},

		// /shutdown.
		{name: "shutdown disabled", method: "POST", path: "/shutdown", remote: loopback4, wantStatus: 404},
		{name: "shutdown", shutdownEnabled: true, method: "POST", path: "/shutdown", remote: loopback4, wantStatus: 200, wantBody: "shutdown\n", wantShutdowns: 1},
		{name: "shutdown ipv6 loopback", shutdownEnabled: true, method: "POST", path: "/shutdown", remote: loopback6, wantStatus: 200, wantBody: "shutdown\n", wantShutdowns: 1},
		{name: "shutdown get", shutdownEnabled: true, method: "GET", path: "/shutdown", remote: loopback4, wantStatus: 405, wantAllow: "POST"},
		{name: "shutdown from remote", shutdownEnabled: true, method: "POST", path: "/shutdown", remote: remote4, wantStatus: 403, wantBody: "/shutdown is only served to clients on a loopback address\n"},

		// /proxy-log-level.
		{name: "log level get", method: "GET", path: "/proxy-log-level", remote: loopback4, wantStatus: 200, wantBody: "warn,linkerd=info"},
		{name: "log level from remote", method: "GET", path: "/proxy-log-level", remote: remote4, wantStatus: 403, wantBody: "/proxy-log-level is only served to clients on a loopback address\n"},
		{name: "log level put from remote", method: "PUT", path: "/proxy-log-level", remote: remote6, body: "debug", wantStatus: 403},
		{name: "log level put", method: "PUT", path: "/proxy-log-level", remote: loopback4, body: "warn,linkerd=debug\n", wantStatus: 204, wantBody: ""},
		{name: "log level bad", method: "PUT", path: "/proxy-log-level", remote: loopback4, body: "linkerd=loud", wantStatus: 400, wantBody: "invalid log level \"loud\" in directive \"linkerd=loud\"\n"},
		{name: "log level empty", method: "PUT", path: "/proxy-log-level", remote: loopback4, body: " \n", wantStatus: 400, wantBody: "empty log level spec\n"},
		{name: "log level too long", method: "PUT", path: "/proxy-log-level", remote: loopback4, body: strings.Repeat("x", maxLogSpecBytes+1), wantStatus: 413},
		{name: "log level post", method: "POST", path: "/proxy-log-level", remote: loopback4, body: "debug", wantStatus: 405, wantAllow: "GET, HEAD, PUT"},

		// /env.json.
		{name: "env", method: "GET", path: "/env.json", remote: loopbackMap, wantStatus: 200, wantBody: `{"A":"2","EMPTY":"","HOME":"/root","LINKERD2_PROXY_LOG":"warn,linkerd=info"}` + "\n", wantType: "application/json"},
		{name: "env from remote", method: "GET", path: "/env.json", remote: remote4, wantStatus: 403},
		{name: "env from unparsable address", method: "GET", path: "/env.json", remote: "@", wantStatus: 403},
		{name: "env put", method: "PUT", path: "/env.json", remote: loopback4, wantStatus: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.shutdownEnabled)
			f.ready.Store(!tc.notReady)
			rec := f.do(tc.method, tc.path, tc.remote, tc.body)
			if rec.Code != tc.wantStatus {
				t.Fatalf("%s %s from %s = %d %q, want %d", tc.method, tc.path, tc.remote, rec.Code, rec.Body.String(), tc.wantStatus)
			}
			switch {
			case tc.wantContains != "":
				if !strings.Contains(rec.Body.String(), tc.wantContains) {
					t.Errorf("body %q does not contain %q", rec.Body.String(), tc.wantContains)
				}
			case tc.wantBody != "" || tc.wantStatus == http.StatusNoContent:
				if rec.Body.String() != tc.wantBody {
					t.Errorf("body = %q, want %q", rec.Body.String(), tc.wantBody)
				}
			}
			if tc.wantType != "" && rec.Header().Get("Content-Type") != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", rec.Header().Get("Content-Type"), tc.wantType)
			}
			if tc.wantAllow != "" && rec.Header().Get("Allow") != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", rec.Header().Get("Allow"), tc.wantAllow)
			}
			if rec.Code == http.StatusForbidden && strings.Count(rec.Body.String(), "\n") != 1 {
				t.Errorf("403 body %q is not one line", rec.Body.String())
			}
			if got := f.shutdowns.Load(); got != tc.wantShutdowns {
				t.Errorf("Shutdown called %d times, want %d", got, tc.wantShutdowns)
			}
		})
	}
}

func TestLogLevelChange(t *testing.T) {
	tests := []struct {
		spec      string
		wantLevel slog.Level
	}{
		{"warn,linkerd=debug", slog.LevelDebug},
		{"error", slog.LevelError},
		{"info,linkerd=trace", proxyenv.LevelTrace},
		{"off", proxyenv.LevelOff},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			f := newFixture(t, false)
			if rec := f.do("PUT", "/proxy-log-level", loopback6, tc.spec); rec.Code != http.StatusNoContent {
				t.Fatalf("PUT = %d %q", rec.Code, rec.Body.String())
			}
			if got := f.level.Level(); got != tc.wantLevel {
				t.Errorf("level = %v, want %v", got, tc.wantLevel)
			}
			if rec := f.do("GET", "/proxy-log-level", loopback4, ""); rec.Body.String() != tc.spec {
				t.Errorf("GET after PUT = %q, want %q", rec.Body.String(), tc.spec)
			}
		})
	}

	t.Run("bad spec leaves the level alone", func(t *testing.T) {
		f := newFixture(t, false)
		f.level.Set(slog.LevelWarn)
		if rec := f.do("PUT", "/proxy-log-level", loopback4, "linkerd=nope"); rec.Code != http.StatusBadRequest {
			t.Fatalf("PUT = %d", rec.Code)
		}
		if f.level.Level() != slog.LevelWarn {
			t.Errorf("level changed to %v", f.level.Level())
		}
		if rec := f.do("GET", "/proxy-log-level", loopback4, ""); rec.Body.String() != "warn,linkerd=info" {
			t.Errorf("GET = %q", rec.Body.String())
		}
	})
}

func TestShutdownCalledOnce(t *testing.T) {
	f := newFixture(t, true)
	for range 3 {
		if rec := f.do("POST", "/shutdown", loopback4, ""); rec.Code != http.StatusOK {
			t.Fatalf("POST /shutdown = %d", rec.Code)
		}
	}
	if got := f.shutdowns.Load(); got != 1 {
		t.Fatalf("Shutdown called %d times, want 1", got)
	}
}

func TestShutdownNilFuncIsDisabled(t *testing.T) {
	h := NewHandler(Options{ShutdownEnabled: true})
	req := httptest.NewRequest("POST", "/shutdown", nil)
	req.RemoteAddr = loopback4
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("POST /shutdown = %d, want 404", rec.Code)
	}
}

func TestDefaults(t *testing.T) {
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelDebug)
	h := NewHandler(Options{LogLevel: lv})
	tests := []struct {
		path, want string
	}{
		{"/ready", "ready\n"},
		{"/proxy-log-level", "debug"},
		{"/env.json", "{}\n"},
	}
	for _, tc := range tests {
		req := httptest.NewRequest("GET", tc.path, nil)
		req.RemoteAddr = loopback4
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Body.String() != tc.want {
			t.Errorf("GET %s = %d %q, want 200 %q", tc.path, rec.Code, rec.Body.String(), tc.want)
		}
	}
}

func TestMetricsGzip(t *testing.T) {
	f := newFixture(t, false)
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.RemoteAddr = remote4
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("GET /metrics = %d, Content-Encoding %q", rec.Code, rec.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	if !strings.Contains(string(body), "# TYPE request_total counter\nrequest_total 3\n") {
		t.Fatalf("metrics body %q", body)
	}
}

func TestEnvJSONRoundTrip(t *testing.T) {
	environ := []string{`QUOTE="x"`, "NEWLINE=a\nb", "UNICODE=ü", "EQ=a=b"}
	h := NewHandler(Options{Environ: environ})
	req := httptest.NewRequest("GET", "/env.json", nil)
	req.RemoteAddr = loopback4
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", rec.Body.String(), err)
	}
	want := map[string]string{"QUOTE": `"x"`, "NEWLINE": "a\nb", "UNICODE": "ü", "EQ": "a=b"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:1", true},
		{"127.255.0.9:1", true},
		{"[::1]:1", true},
		{"[::ffff:127.0.0.1]:1", true},
		{"127.0.0.1", true},
		{"10.0.0.1:1", false},
		{"[::]:1", false},
		{"0.0.0.0:1", false},
		{"[fe80::1%eth0]:1", false},
		{"localhost:1", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := isLoopback(tc.addr); got != tc.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestOverRealServer(t *testing.T) {
	f := newFixture(t, true)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	tests := []struct {
		method, path string
		wantStatus   int
	}{
		{"GET", "/live", http.StatusOK},
		{"GET", "/env.json", http.StatusOK}, // the client is on 127.0.0.1
		{"POST", "/shutdown", http.StatusOK},
	}
	for _, tc := range tests {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.wantStatus {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.wantStatus)
		}
	}
	srv.Close() // waits for the handlers, which call Shutdown after answering
	if f.shutdowns.Load() != 1 {
		t.Errorf("Shutdown called %d times", f.shutdowns.Load())
	}
}
