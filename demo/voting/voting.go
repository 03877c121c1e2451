// Package voting is the demo's ballot box, served over gRPC
// (linkerdgo.demo.v1.Voting). It keeps counts in memory and refuses one
// choice on purpose, so that the mesh's telemetry has a failure to find.
package voting

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	demov1 "github.com/linkerd-go/linkerd/proto/demo/v1"
)

// BrokenChoice is the item whose votes fail by default.
const BrokenChoice = "iceberg"

// BrokenMessage is the error message of a vote for the broken choice.
const BrokenMessage = "this one is broken on purpose"

// Server implements the Voting gRPC service.
type Server struct {
	demov1.UnimplementedVotingServer
	broken string

	mu     sync.Mutex
	counts map[string]int64
}

var _ demov1.VotingServer = (*Server)(nil)

// NewServer returns an empty ballot box whose votes for broken fail with
// codes.Unknown. An empty broken means every vote succeeds.
func NewServer(broken string) *Server {
	return &Server{broken: broken, counts: make(map[string]int64)}
}

// Vote records one vote for req.ItemId.
func (s *Server) Vote(_ context.Context, req *demov1.VoteRequest) (*demov1.VoteResponse, error) {
	id := req.GetItemId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "item_id is required")
	}
	if s.broken != "" && id == s.broken {
		return nil, status.Error(codes.Unknown, BrokenMessage)
	}
	s.mu.Lock()
	s.counts[id]++
	s.mu.Unlock()
	return &demov1.VoteResponse{}, nil
}

// Results returns the counts, most votes first, ties ordered by item ID.
func (s *Server) Results(context.Context, *demov1.ResultsRequest) (*demov1.ResultsResponse, error) {
	s.mu.Lock()
	results := make([]*demov1.Result, 0, len(s.counts))
	for id, n := range s.counts {
		results = append(results, &demov1.Result{ItemId: id, Votes: n})
	}
	s.mu.Unlock()
	slices.SortFunc(results, func(a, b *demov1.Result) int {
		if c := cmp.Compare(b.GetVotes(), a.GetVotes()); c != 0 {
			return c
		}
		return cmp.Compare(a.GetItemId(), b.GetItemId())
	})
	return &demov1.ResultsResponse{Results: results}, nil
}
