package voting

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	demov1 "github.com/linkerd-go/linkerd/proto/demo/v1"
)

func results(t *testing.T, s *Server) []string {
	t.Helper()
	resp, err := s.Results(context.Background(), &demov1.ResultsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range resp.GetResults() {
		out = append(out, fmt.Sprintf("%s=%d", r.GetItemId(), r.GetVotes()))
	}
	return out
}

func TestVote(t *testing.T) {
	tests := []struct {
		name     string
		broken   string
		votes    []string
		wantErrs map[string]codes.Code // per item id; absent means OK
		want     []string
	}{
		{
			name:  "sorted by votes then id",
			votes: []string{"crab", "whale", "crab", "anchor", "whale", "crab"},
			want:  []string{"crab=3", "whale=2", "anchor=1"},
		},
		{
			name:     "broken choice fails and is not counted",
			broken:   "iceberg",
			votes:    []string{"iceberg", "anchor", "iceberg"},
			wantErrs: map[string]codes.Code{"iceberg": codes.Unknown},
			want:     []string{"anchor=1"},
		},
		{
			name:  "nothing broken",
			votes: []string{"iceberg"},
			want:  []string{"iceberg=1"},
		},
		{
			name:     "empty id",
			broken:   "iceberg",
			votes:    []string{"", "shell"},
			wantErrs: map[string]codes.Code{"": codes.InvalidArgument},
			want:     []string{"shell=1"},
		},
		{
			name:  "no votes",
			votes: nil,
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(tt.broken)
			for _, id := range tt.votes {
				_, err := s.Vote(context.Background(), &demov1.VoteRequest{ItemId: id})
				want := tt.wantErrs[id]
				if got := status.Code(err); got != want {
					t.Fatalf("Vote(%q) code = %v (%v), want %v", id, got, err, want)
				}
				if want == codes.Unknown && status.Convert(err).Message() != BrokenMessage {
					t.Errorf("Vote(%q) message = %q, want %q", id, status.Convert(err).Message(), BrokenMessage)
				}
			}
			got := results(t, s)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Results = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTies(t *testing.T) {
	s := NewServer("")
	for _, id := range []string{"wave", "anchor", "shell", "anchor", "wave", "shell"} {
		if _, err := s.Vote(context.Background(), &demov1.VoteRequest{ItemId: id}); err != nil {
			t.Fatal(err)
		}
	}
	want := "[anchor=2 shell=2 wave=2]"
	if got := fmt.Sprint(results(t, s)); got != want {
		t.Errorf("Results = %s, want %s", got, want)
	}
}

func TestConcurrentVotes(t *testing.T) {
	s := NewServer(BrokenChoice)
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				id := []string{"anchor", "ship"}[w%2]
				if _, err := s.Vote(context.Background(), &demov1.VoteRequest{ItemId: id}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := fmt.Sprintf("[anchor=%d ship=%d]", workers/2*each, workers/2*each)
	if got := fmt.Sprint(results(t, s)); got != want {
		t.Errorf("Results = %s, want %s", got, want)
	}
}
