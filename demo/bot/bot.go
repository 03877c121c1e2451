// Package bot is the demo's traffic generator: it votes for random items
// through the web API at a steady rate, so that the mesh always has traffic
// to measure (including the votes that fail on purpose).
package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config configures Run.
type Config struct {
	// WebAddr is the web service, as host:port or a base URL.
	WebAddr string
	// Rate is the number of votes per second; it must be positive.
	Rate float64
	// MaxVotes stops the bot after that many votes; 0 means until the
	// context ends.
	MaxVotes int
	// ReportEvery is the interval between summary log lines; 0 means 10s.
	ReportEvery time.Duration
	// RetryEvery is the wait between attempts to list the items at start;
	// 0 means 1s.
	RetryEvery time.Duration
	// Client sends the requests; nil means a client with a 5s timeout.
	Client *http.Client
	// Rand picks the items; nil means a randomly seeded source.
	Rand *rand.Rand
	// Log receives the summaries; nil means slog.Default().
	Log *slog.Logger
}

// Tally counts the votes sent for one item.
type Tally struct {
	OK, Failed int
}

// Stats is what the bot did.
type Stats struct {
	OK, Failed int
	ByChoice   map[string]Tally
}

func (s *Stats) record(choice string, ok bool) {
	t := s.ByChoice[choice]
	if ok {
		s.OK++
		t.OK++
	} else {
		s.Failed++
		t.Failed++
	}
	s.ByChoice[choice] = t
}

// Run lists the items (retrying until the web service answers), then votes
// for random items at cfg.Rate until ctx ends or cfg.MaxVotes votes were
// sent. It returns an error only when it could not start.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	stats := Stats{ByChoice: make(map[string]Tally)}
	if cfg.Rate <= 0 {
		return stats, fmt.Errorf("rate must be positive, got %v", cfg.Rate)
	}
	base, err := baseURL(cfg.WebAddr)
	if err != nil {
		return stats, err
	}
	cfg.defaults()

	ids, err := listItems(ctx, cfg, base)
	if err != nil {
		return stats, err
	}
	cfg.Log.Info("voting", "web", base, "items", len(ids), "rate", cfg.Rate)

	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
	defer tick.Stop()
	report := time.NewTicker(cfg.ReportEvery)
	defer report.Stop()
	var last Stats
	for cfg.MaxVotes == 0 || stats.OK+stats.Failed < cfg.MaxVotes {
		select {
		case <-ctx.Done():
			cfg.Log.Info("stopping", "ok", stats.OK, "failed", stats.Failed)
			return stats, nil
		case <-report.C:
			cfg.Log.Info("votes", "ok", stats.OK-last.OK, "failed", stats.Failed-last.Failed,
				"period", cfg.ReportEvery, "total_ok", stats.OK, "total_failed", stats.Failed)
			last = stats
		case <-tick.C:
			choice := ids[cfg.Rand.IntN(len(ids))]
			err := vote(ctx, cfg.Client, base, choice)
			if err != nil && ctx.Err() != nil {
				continue // stopping: do not count a vote cut short
			}
			if err != nil {
				cfg.Log.Debug("vote failed", "choice", choice, "err", err)
			}
			stats.record(choice, err == nil)
		}
	}
	cfg.Log.Info("done", "ok", stats.OK, "failed", stats.Failed)
	return stats, nil
}

func (cfg *Config) defaults() {
	if cfg.ReportEvery <= 0 {
		cfg.ReportEvery = 10 * time.Second
	}
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
}

func baseURL(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("the web address is required")
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("invalid web address %q", addr)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// listItems fetches the item IDs, retrying every cfg.RetryEvery until it
// succeeds or ctx ends: in a cluster the bot often starts before web does.
func listItems(ctx context.Context, cfg Config, base string) ([]string, error) {
	for {
		ids, err := fetchIDs(ctx, cfg.Client, base)
		if err == nil {
			return ids, nil
		}
		cfg.Log.Warn("listing items, will retry", "err", err, "in", cfg.RetryEvery)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("listing items: %w", err)
		case <-time.After(cfg.RetryEvery):
		}
	}
}

func fetchIDs(ctx context.Context, c *http.Client, base string) ([]string, error) {
	body, err := get(ctx, c, base+"/api/list")
	if err != nil {
		return nil, err
	}
	var items []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, fmt.Errorf("decoding item list: %w", err)
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		if it.ID != "" {
			ids = append(ids, it.ID)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("the item list is empty")
	}
	return ids, nil
}

func vote(ctx context.Context, c *http.Client, base, choice string) error {
	_, err := get(ctx, c, base+"/api/vote?choice="+url.QueryEscape(choice))
	return err
}

// get fetches target and returns its body, or an error for any status but 200.
func get(ctx context.Context, c *http.Client, target string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", target, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}
