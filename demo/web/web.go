// Package web is the demo's front end: an HTML page and a small JSON API
// over HTTP/1.1. It calls the items and voting services over gRPC, so every
// vote crosses the mesh twice (web → items, web → voting).
//
// Routes:
//
//	GET  /                 the voting page
//	GET  /api/list         the items, as JSON
//	GET  /api/vote?choice= vote for an item (POST works too); 500 when voting fails
//	GET  /api/leaderboard  the items with their votes, most votes first
//	GET  /ready            200 while serving, 503 once draining
package web

import (
	"context"
	_ "embed"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	demov1 "github.com/linkerd-go/linkerd/proto/demo/v1"
)

// CallTimeout bounds each gRPC call made while serving a request.
const CallTimeout = 5 * time.Second

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

// Item is an item as the JSON API shows it.
type Item struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Symbol string `json:"symbol"`
}

// Entry is one line of the leaderboard.
type Entry struct {
	Item
	Votes int64 `json:"votes"`
}

// VoteResponse is the body of a successful vote.
type VoteResponse struct {
	Voted Item `json:"voted"`
}

// ErrorResponse is the body of every API error.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Handler serves the page and the API.
type Handler struct {
	items    demov1.ItemsClient
	voting   demov1.VotingClient
	log      *slog.Logger
	mux      *http.ServeMux
	draining atomic.Bool
}

// New returns a handler that calls items and voting.
func New(items demov1.ItemsClient, voting demov1.VotingClient, log *slog.Logger) *Handler {
	h := &Handler{items: items, voting: voting, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /api/list", h.list)
	h.mux.HandleFunc("GET /api/vote", h.vote)
	h.mux.HandleFunc("POST /api/vote", h.vote)
	h.mux.HandleFunc("GET /api/leaderboard", h.leaderboard)
	h.mux.HandleFunc("GET /ready", h.ready)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Drain makes /ready fail, so that load balancers stop sending new traffic
// before the server shuts down.
func (h *Handler) Drain() { h.draining.Store(true) }

func (h *Handler) ready(w http.ResponseWriter, _ *http.Request) {
	if h.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	items, err := h.listItems(r.Context())
	if err != nil {
		h.fail(w, "listing items", err)
		return
	}
	writeJSON(w, http.StatusOK, items)
}

func (h *Handler) vote(w http.ResponseWriter, r *http.Request) {
	choice := r.FormValue("choice")
	if choice == "" {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "the choice parameter is required"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), CallTimeout)
	defer cancel()
	found, err := h.items.FindByID(ctx, &demov1.FindByIDRequest{Id: choice})
	if err != nil {
		h.fail(w, "finding item", err)
		return
	}
	if _, err := h.voting.Vote(ctx, &demov1.VoteRequest{ItemId: choice}); err != nil {
		h.fail(w, "voting", err)
		return
	}
	writeJSON(w, http.StatusOK, VoteResponse{Voted: fromProto(found.GetItem())})
}

func (h *Handler) leaderboard(w http.ResponseWriter, r *http.Request) {
	board, err := h.board(r.Context())
	if err != nil {
		h.fail(w, "building leaderboard", err)
		return
	}
	writeJSON(w, http.StatusOK, board)
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	items, err := h.listItems(r.Context())
	if err != nil {
		h.log.Warn("rendering page", "err", err)
		http.Error(w, "the items service is unavailable", http.StatusInternalServerError)
		return
	}
	data := struct {
		Items      []Item
		Board      []Entry
		BoardError string
	}{Items: items}
	if data.Board, err = h.board(r.Context()); err != nil {
		h.log.Warn("rendering leaderboard", "err", err)
		data.BoardError = "the leaderboard is unavailable"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, data); err != nil {
		h.log.Warn("writing page", "err", err)
	}
}

func (h *Handler) listItems(ctx context.Context) ([]Item, error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	resp, err := h.items.List(ctx, &demov1.ListRequest{})
	if err != nil {
		return nil, err
	}
	items := make([]Item, 0, len(resp.GetItems()))
	for _, it := range resp.GetItems() {
		items = append(items, fromProto(it))
	}
	return items, nil
}

// board joins the vote counts with the catalogue. Items nobody voted for are
// left out; counts for items missing from the catalogue keep their ID as name.
func (h *Handler) board(ctx context.Context) ([]Entry, error) {
	items, err := h.listItems(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	resp, err := h.voting.Results(ctx, &demov1.ResultsRequest{})
	if err != nil {
		return nil, err
	}
	byID := make(map[string]Item, len(items))
	for _, it := range items {
		byID[it.ID] = it
	}
	board := make([]Entry, 0, len(resp.GetResults()))
	for _, res := range resp.GetResults() {
		it, ok := byID[res.GetItemId()]
		if !ok {
			it = Item{ID: res.GetItemId(), Name: res.GetItemId()}
		}
		board = append(board, Entry{Item: it, Votes: res.GetVotes()})
	}
	return board, nil
}

// fail answers with the HTTP status matching a gRPC error: 400 for
// InvalidArgument, 404 for NotFound, 500 for anything else.
func (h *Handler) fail(w http.ResponseWriter, what string, err error) {
	code := http.StatusInternalServerError
	st := status.Convert(err)
	switch st.Code() {
	case codes.InvalidArgument:
		code = http.StatusBadRequest
	case codes.NotFound:
		code = http.StatusNotFound
	}
	h.log.Warn(what+" failed", "code", st.Code().String(), "err", st.Message())
	writeJSON(w, code, ErrorResponse{Error: st.Message()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fromProto(it *demov1.Item) Item {
	return Item{ID: it.GetId(), Name: it.GetName(), Symbol: it.GetSymbol()}
}
