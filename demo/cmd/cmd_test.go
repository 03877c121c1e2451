package cmd

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd/demo/bot"
	"github.com/linkerd-go/linkerd/demo/items"
	"github.com/linkerd-go/linkerd/demo/voting"
	"github.com/linkerd-go/linkerd/demo/web"
	"github.com/linkerd-go/linkerd/internal/syncbuf"
	demov1 "github.com/linkerd-go/linkerd/proto/demo/v1"
)

var servingAddr = regexp.MustCompile(`msg=serving .*addr=(\S+)`)

// run starts the command line args and returns its log and a channel with
// its result.
func run(ctx context.Context, env map[string]string, args ...string) (*syncbuf.Buffer, <-chan error) {
	logs := &syncbuf.Buffer{}
	root := NewCommand(logs, func(k string) string { return env[k] })
	root.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	return logs, done
}

// serve starts a server subcommand on 127.0.0.1 and returns the address it
// listens on, read from its "serving" log line.
func serve(t *testing.T, ctx context.Context, env map[string]string, args ...string) (string, <-chan error) {
	t.Helper()
	logs, done := run(ctx, env, append(args, "--addr", "127.0.0.1:0")...)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := servingAddr.FindStringSubmatch(logs.String()); m != nil {
			return m[1], done
		}
		select {
		case err := <-done:
			t.Fatalf("%v exited before serving: %v\n%s", args, err, logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("%v: no serving line in 10s:\n%s", args, logs)
	return "", nil
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestEndToEnd runs items, voting and web through their subcommands on
// 127.0.0.1, votes through web with the bot, and checks what users see.
func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srvCtx, stop := context.WithCancel(ctx)
	defer stop()

	itemsAddr, itemsDone := serve(t, srvCtx, nil, "items")
	votingAddr, votingDone := serve(t, srvCtx, nil, "voting", "--log-level", "debug")
	// items' address comes from the environment, voting's from the flag.
	webAddr, webDone := serve(t, srvCtx, map[string]string{EnvItemsAddr: itemsAddr}, "web", "--voting-addr", votingAddr)
	base := "http://" + webAddr

	// gRPC health of the gRPC services.
	for addr, service := range map[string]string{
		itemsAddr:  demov1.Items_ServiceDesc.ServiceName,
		votingAddr: demov1.Voting_ServiceDesc.ServiceName,
	} {
		hc := healthpb.NewHealthClient(dial(t, addr))
		for _, name := range []string{"", service} {
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("health of %q at %s: %v, %v", name, addr, resp.GetStatus(), err)
			}
		}
	}
	if code, _ := httpGet(t, base+"/ready"); code != 200 {
		t.Errorf("web /ready: %d", code)
	}

	// The bot, bounded.
	const n = 150
	stats, err := bot.Run(ctx, bot.Config{
		WebAddr: webAddr, Rate: 500, MaxVotes: n,
		Rand: rand.New(rand.NewPCG(7, 11)), Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats.OK+stats.Failed != n {
		t.Fatalf("bot sent %d+%d votes, want %d", stats.OK, stats.Failed, n)
	}
	if got := stats.ByChoice[voting.BrokenChoice]; got.OK != 0 || got.Failed == 0 {
		t.Errorf("bot's votes for %s: %+v, want only failures", voting.BrokenChoice, got)
	}
	if stats.Failed != stats.ByChoice[voting.BrokenChoice].Failed {
		t.Errorf("bot saw %d failures, all should be for %s: %+v", stats.Failed, voting.BrokenChoice, stats.ByChoice)
	}

	// Every successful vote is on the leaderboard.
	code, body := httpGet(t, base+"/api/leaderboard")
	var board []web.Entry
	if err := json.Unmarshal([]byte(body), &board); code != 200 || err != nil {
		t.Fatalf("leaderboard: %d %s (%v)", code, body, err)
	}
	total := int64(0)
	for i, e := range board {
		total += e.Votes
		if want := int64(stats.ByChoice[e.ID].OK); e.Votes != want {
			t.Errorf("leaderboard: %s has %d votes, bot made %d", e.ID, e.Votes, want)
		}
		if i > 0 && board[i-1].Votes < e.Votes {
			t.Errorf("leaderboard not sorted: %+v", board)
		}
		if e.Name == "" || e.Name == e.ID {
			t.Errorf("leaderboard entry without a name: %+v", e)
		}
	}
	if total != int64(stats.OK) {
		t.Errorf("leaderboard total %d, bot's successful votes %d", total, stats.OK)
	}

	// Through the web API: the broken choice is a 500, every other one succeeds.
	for _, it := range items.Catalog() {
		code, body := httpGet(t, base+"/api/vote?choice="+it.ID)
		want := 200
		if it.ID == voting.BrokenChoice {
			want = 500
			if !strings.Contains(body, voting.BrokenMessage) {
				t.Errorf("vote %s: body %s lacks %q", it.ID, body, voting.BrokenMessage)
			}
		}
		if code != want {
			t.Errorf("vote %s: status %d, want %d (%s)", it.ID, code, want, body)
		}
	}

	// Straight to voting over gRPC: the broken choice is codes.Unknown.
	vc := demov1.NewVotingClient(dial(t, votingAddr))
	for _, it := range items.Catalog() {
		_, err := vc.Vote(ctx, &demov1.VoteRequest{ItemId: it.ID})
		want := codes.OK
		if it.ID == voting.BrokenChoice {
			want = codes.Unknown
		}
		if got := status.Code(err); got != want {
			t.Errorf("gRPC vote %s: %v (%v), want %v", it.ID, got, err, want)
		}
	}

	// The page renders every item.
	code, page := httpGet(t, base+"/")
	if code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	for _, it := range items.Catalog() {
		if !strings.Contains(page, it.Name) || !strings.Contains(page, it.Symbol) {
			t.Errorf("page lacks %s %s", it.Symbol, it.Name)
		}
	}

	// The bot subcommand stops by itself after --votes.
	botLogs, botDone := run(ctx, nil, "bot", "--web-addr", webAddr, "--rate", "200", "--votes", "5")
	select {
	case err := <-botDone:
		if err != nil {
			t.Errorf("bot: %v\n%s", err, botLogs)
		}
	case <-ctx.Done():
		t.Fatalf("bot did not finish:\n%s", botLogs)
	}
	if !strings.Contains(botLogs.String(), "msg=done") {
		t.Errorf("bot logged no summary:\n%s", botLogs)
	}

	// SIGTERM (the context ending) stops every server cleanly.
	stop()
	for name, done := range map[string]<-chan error{"items": itemsDone, "voting": votingDone, "web": webDone} {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s exited with %v", name, err)
			}
		case <-time.After(ShutdownGrace + 5*time.Second):
			t.Errorf("%s did not stop", name)
		}
	}
}

func TestCommandErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"items", "--log-level", "loud"}, "invalid --log-level"},
		{[]string{"voting", "--port", "70000"}, "invalid --port"},
		{[]string{"web", "--addr", "nonsense", "--port", "1"}, "invalid --addr"},
		{[]string{"bot", "--rate", "0", "--web-addr", "127.0.0.1:1"}, "rate must be positive"},
		{[]string{"items", "extra"}, "unknown command"},
		{[]string{"nope"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, done := run(ctx, nil, tt.args...)
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %v, want %q", err, tt.want)
				}
			case <-ctx.Done():
				t.Fatal("command did not return")
			}
		})
	}
}

func TestListenAddr(t *testing.T) {
	tests := []struct {
		addr    string
		port    int
		set     bool
		want    string
		wantErr bool
	}{
		{addr: ":8080", want: ":8080"},
		{addr: ":8080", port: 9000, set: true, want: ":9000"},
		{addr: "127.0.0.1:8080", port: 7000, set: true, want: "127.0.0.1:7000"},
		{addr: "[::1]:8080", port: 0, set: true, want: "[::1]:0"},
		{addr: "127.0.0.1", port: 1, set: true, wantErr: true},
		{addr: ":8080", port: -1, set: true, wantErr: true},
	}
	for _, tt := range tests {
		got, err := listenAddr(tt.addr, tt.port, tt.set)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("listenAddr(%q, %d, %v) = %q, %v; want %q (error %v)", tt.addr, tt.port, tt.set, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestEnvDefaults(t *testing.T) {
	env := map[string]string{EnvItemsAddr: "i:1", EnvVotingAddr: "v:2", EnvWebAddr: "w:3"}
	root := NewCommand(io.Discard, func(k string) string { return env[k] })
	for cmd, flags := range map[string]map[string]string{
		"web": {"items-addr": "i:1", "voting-addr": "v:2", "addr": ":8080"},
		"bot": {"web-addr": "w:3", "rate": "3"},
	} {
		c, _, err := root.Find([]string{cmd})
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range flags {
			if got := c.Flags().Lookup(name).DefValue; got != want {
				t.Errorf("%s --%s default = %q, want %q", cmd, name, got, want)
			}
		}
	}
	root = NewCommand(io.Discard, func(string) string { return "" })
	c, _, _ := root.Find([]string{"web"})
	if got := c.Flags().Lookup("items-addr").DefValue; got != "items:8080" {
		t.Errorf("web --items-addr default without env = %q", got)
	}
}
