package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd/demo/items"
	"github.com/linkerd-go/linkerd/demo/voting"
	demov1 "github.com/linkerd-go/linkerd/proto/demo/v1"
)

// itemsClient calls an Items server in-process; err, when set, fails every call.
type itemsClient struct {
	srv demov1.ItemsServer
	err error
}

func (c itemsClient) List(ctx context.Context, in *demov1.ListRequest, _ ...grpc.CallOption) (*demov1.ListResponse, error) {
	if c.err != nil {
		return nil, c.err
	}
	return c.srv.List(ctx, in)
}

func (c itemsClient) FindByID(ctx context.Context, in *demov1.FindByIDRequest, _ ...grpc.CallOption) (*demov1.FindByIDResponse, error) {
	if c.err != nil {
		return nil, c.err
	}
	return c.srv.FindByID(ctx, in)
}

// votingClient calls a Voting server in-process; err, when set, fails every call.
type votingClient struct {
	srv demov1.VotingServer
	err error
}

func (c votingClient) Vote(ctx context.Context, in *demov1.VoteRequest, _ ...grpc.CallOption) (*demov1.VoteResponse, error) {
	if c.err != nil {
		return nil, c.err
	}
	return c.srv.Vote(ctx, in)
}

func (c votingClient) Results(ctx context.Context, in *demov1.ResultsRequest, _ ...grpc.CallOption) (*demov1.ResultsResponse, error) {
	if c.err != nil {
		return nil, c.err
	}
	return c.srv.Results(ctx, in)
}

var testCatalog = []items.Item{
	{ID: "anchor", Name: "Anchor", Symbol: "⚓"},
	{ID: "crab", Name: "Crab <&>", Symbol: "🦀"},
	{ID: "iceberg", Name: "Iceberg", Symbol: "🧊"},
}

func newHandler(itemsErr, votingErr error) *Handler {
	return New(
		itemsClient{srv: items.NewServer(testCatalog), err: itemsErr},
		votingClient{srv: voting.NewServer(voting.BrokenChoice), err: votingErr},
		slog.New(slog.DiscardHandler),
	)
}

func do(t *testing.T, h http.Handler, method, target string, body io.Reader) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestVote(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "connection refused")
	tests := []struct {
		name      string
		method    string
		target    string
		form      url.Values
		votingErr error
		itemsErr  error
		wantCode  int
		wantBody  string // substring
	}{
		{name: "get", method: "GET", target: "/api/vote?choice=anchor", wantCode: 200, wantBody: `"voted":{"id":"anchor","name":"Anchor"`},
		{name: "post query", method: "POST", target: "/api/vote?choice=crab", wantCode: 200, wantBody: `"id":"crab"`},
		{name: "post form", method: "POST", target: "/api/vote", form: url.Values{"choice": {"crab"}}, wantCode: 200, wantBody: `"id":"crab"`},
		{name: "broken", method: "GET", target: "/api/vote?choice=iceberg", wantCode: 500, wantBody: voting.BrokenMessage},
		{name: "unknown item", method: "GET", target: "/api/vote?choice=kraken", wantCode: 404, wantBody: `"error":"no item`},
		{name: "missing choice", method: "GET", target: "/api/vote", wantCode: 400, wantBody: "required"},
		{name: "voting down", method: "GET", target: "/api/vote?choice=anchor", votingErr: unavailable, wantCode: 500, wantBody: "connection refused"},
		{name: "items down", method: "GET", target: "/api/vote?choice=anchor", itemsErr: unavailable, wantCode: 500},
		{name: "wrong method", method: "PUT", target: "/api/vote?choice=anchor", wantCode: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.form != nil {
				body = strings.NewReader(tt.form.Encode())
			}
			rec := do(t, newHandler(tt.itemsErr, tt.votingErr), tt.method, tt.target, body)
			if rec.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantCode, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body = %s, want it to contain %q", rec.Body, tt.wantBody)
			}
			if rec.Code != 405 {
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
			}
		})
	}
}

func TestListAndLeaderboard(t *testing.T) {
	h := newHandler(nil, nil)
	rec := do(t, h, "GET", "/api/list", nil)
	var list []Item
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != 200 {
		t.Fatalf("list: %d %s (%v)", rec.Code, rec.Body, err)
	}
	if len(list) != len(testCatalog) || list[1] != (Item{ID: "crab", Name: "Crab <&>", Symbol: "🦀"}) {
		t.Errorf("list = %+v", list)
	}

	for _, id := range []string{"crab", "anchor", "crab", "iceberg", "crab", "anchor"} {
		do(t, h, "GET", "/api/vote?choice="+id, nil)
	}
	rec = do(t, h, "GET", "/api/leaderboard", nil)
	var board []Entry
	if err := json.Unmarshal(rec.Body.Bytes(), &board); err != nil || rec.Code != 200 {
		t.Fatalf("leaderboard: %d %s (%v)", rec.Code, rec.Body, err)
	}
	want := []Entry{
		{Item: Item{ID: "crab", Name: "Crab <&>", Symbol: "🦀"}, Votes: 3},
		{Item: Item{ID: "anchor", Name: "Anchor", Symbol: "⚓"}, Votes: 2},
	}
	if len(board) != len(want) {
		t.Fatalf("leaderboard = %+v, want %+v", board, want)
	}
	for i := range want {
		if board[i] != want[i] {
			t.Errorf("leaderboard[%d] = %+v, want %+v", i, board[i], want[i])
		}
	}

	if rec := do(t, newHandler(nil, status.Error(codes.Unavailable, "down")), "GET", "/api/leaderboard", nil); rec.Code != 500 {
		t.Errorf("leaderboard with voting down: status %d, want 500", rec.Code)
	}
	if rec := do(t, newHandler(status.Error(codes.Unavailable, "down"), nil), "GET", "/api/list", nil); rec.Code != 500 {
		t.Errorf("list with items down: status %d, want 500", rec.Code)
	}
}

func TestPage(t *testing.T) {
	tests := []struct {
		name       string
		itemsErr   error
		votingErr  error
		votes      []string
		wantCode   int
		want       []string
		wantAbsent []string
	}{
		{
			name:       "items and votes",
			votes:      []string{"anchor"},
			wantCode:   200,
			want:       []string{"<!DOCTYPE html>", `data-id="anchor"`, "Anchor", "Crab &lt;&amp;&gt;", "Iceberg", "🧊", `<td class="votes">1</td>`},
			wantAbsent: []string{"Crab <&>", `<td colspan="2">No votes yet.`, "unavailable"},
		},
		{
			name:     "no votes",
			wantCode: 200,
			want:     []string{"Anchor", `<td colspan="2">No votes yet.`},
		},
		{
			name:      "voting down",
			votingErr: status.Error(codes.Unavailable, "down"),
			wantCode:  200,
			want:      []string{"Anchor", "the leaderboard is unavailable"},
		},
		{
			name:     "items down",
			itemsErr: status.Error(codes.Unavailable, "down"),
			wantCode: 500,
			want:     []string{"items service is unavailable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(tt.itemsErr, tt.votingErr)
			for _, id := range tt.votes {
				if rec := do(t, h, "GET", "/api/vote?choice="+id, nil); rec.Code != 200 {
					t.Fatalf("vote %s: %d", id, rec.Code)
				}
			}
			rec := do(t, h, "GET", "/", nil)
			if rec.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantCode)
			}
			page := rec.Body.String()
			for _, s := range tt.want {
				if !strings.Contains(page, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tt.wantAbsent {
				if strings.Contains(page, s) {
					t.Errorf("page contains %q", s)
				}
			}
		})
	}
	if rec := do(t, newHandler(nil, nil), "GET", "/nope", nil); rec.Code != 404 {
		t.Errorf("GET /nope: status %d, want 404", rec.Code)
	}
}

func TestReady(t *testing.T) {
	h := newHandler(nil, nil)
	if rec := do(t, h, "GET", "/ready", nil); rec.Code != 200 {
		t.Errorf("ready: status %d, want 200", rec.Code)
	}
	h.Drain()
	if rec := do(t, h, "GET", "/ready", nil); rec.Code != 503 {
		t.Errorf("ready while draining: status %d, want 503", rec.Code)
	}
}
