package bot

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeWeb is a web API that counts votes and fails those for "bad"; its
// first listFailures list requests answer 503.
type fakeWeb struct {
	mu           sync.Mutex
	listFailures int
	lists        int
	votes        map[string]int
}

func (f *fakeWeb) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/api/list":
		f.lists++
		if f.lists <= f.listFailures {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode([]map[string]string{{"id": "good"}, {"id": "fine"}, {"id": "bad"}})
	case "/api/vote":
		if r.Method != http.MethodGet {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		choice := r.URL.Query().Get("choice")
		f.votes[choice]++
		if choice == "bad" {
			http.Error(w, `{"error":"broken"}`, http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	default:
		http.NotFound(w, r)
	}
}

func start(t *testing.T, listFailures int) (*fakeWeb, string) {
	t.Helper()
	f := &fakeWeb{listFailures: listFailures, votes: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, strings.TrimPrefix(srv.URL, "http://")
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestRunBounded(t *testing.T) {
	f, addr := start(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 60
	stats, err := Run(ctx, Config{
		WebAddr: addr, Rate: 1000, MaxVotes: n, RetryEvery: 5 * time.Millisecond,
		ReportEvery: 5 * time.Millisecond, Rand: rand.New(rand.NewPCG(1, 2)), Log: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats.OK+stats.Failed != n {
		t.Errorf("sent %d+%d votes, want %d", stats.OK, stats.Failed, n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lists != 3 {
		t.Errorf("listed %d times, want 3 (two failures, then success)", f.lists)
	}
	for _, id := range []string{"good", "fine", "bad"} {
		tally := stats.ByChoice[id]
		if tally.OK+tally.Failed != f.votes[id] {
			t.Errorf("%s: bot counted %+v, server saw %d", id, tally, f.votes[id])
		}
		if f.votes[id] == 0 {
			t.Errorf("%s: never voted for in %d votes", id, n)
		}
		wantFailed := 0
		if id == "bad" {
			wantFailed = f.votes[id]
		}
		if tally.Failed != wantFailed {
			t.Errorf("%s: %d failed, want %d", id, tally.Failed, wantFailed)
		}
	}
}

func TestRunStopsWithContext(t *testing.T) {
	_, addr := start(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	began := time.Now()
	stats, err := Run(ctx, Config{WebAddr: "http://" + addr + "/", Rate: 50, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(began); elapsed > 5*time.Second {
		t.Errorf("Run took %v after its context ended", elapsed)
	}
	// 50/s for 150ms: a handful of votes, far fewer than unbounded.
	if total := stats.OK + stats.Failed; total == 0 || total > 20 {
		t.Errorf("sent %d votes at 50/s in 150ms", total)
	}
}

func TestRunNeverReady(t *testing.T) {
	f, addr := start(t, 1<<30)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, Config{WebAddr: addr, Rate: 10, RetryEvery: 10 * time.Millisecond, Log: quiet()})
	if err == nil || !strings.Contains(err.Error(), "listing items") {
		t.Errorf("err = %v, want a listing error", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lists < 2 {
		t.Errorf("listed %d times, want retries", f.lists)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"zero rate", Config{WebAddr: "web:8080"}, "rate must be positive"},
		{"negative rate", Config{WebAddr: "web:8080", Rate: -1}, "rate must be positive"},
		{"no address", Config{Rate: 1}, "address is required"},
		{"bad address", Config{WebAddr: "http://", Rate: 1}, "invalid web address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Log = quiet()
			_, err := Run(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"web:8080", "http://web:8080"},
		{"127.0.0.1:80", "http://127.0.0.1:80"},
		{"http://web.demo.svc.cluster.local:8080/", "http://web.demo.svc.cluster.local:8080"},
		{"https://example.test", "https://example.test"},
	}
	for _, tt := range tests {
		got, err := baseURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("baseURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
