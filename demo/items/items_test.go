package items

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd/demo/voting"
	demov1 "github.com/linkerd-go/linkerd/proto/demo/v1"
)

func TestCatalog(t *testing.T) {
	cat := Catalog()
	if len(cat) < 10 {
		t.Fatalf("catalogue has %d items, want at least 10", len(cat))
	}
	seen := map[string]bool{}
	for _, it := range cat {
		if it.ID == "" || it.Name == "" || it.Symbol == "" {
			t.Errorf("incomplete item %+v", it)
		}
		if seen[it.ID] {
			t.Errorf("duplicate id %q", it.ID)
		}
		seen[it.ID] = true
	}
	if !seen[voting.BrokenChoice] {
		t.Errorf("catalogue lacks the broken choice %q", voting.BrokenChoice)
	}
}

func TestList(t *testing.T) {
	cat := []Item{{"b", "Bee", "🐝"}, {"a", "Ant", "🐜"}, {"b", "Bat", "🦇"}}
	resp, err := NewServer(cat).List(context.Background(), &demov1.ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range resp.GetItems() {
		got = append(got, it.GetId()+"/"+it.GetName()+"/"+it.GetSymbol())
	}
	want := []string{"b/Bee/🐝", "a/Ant/🐜"} // catalogue order, first duplicate wins
	if !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

func TestFindByID(t *testing.T) {
	s := NewServer(Catalog())
	tests := []struct {
		id       string
		wantCode codes.Code
		wantName string
	}{
		{id: "anchor", wantCode: codes.OK, wantName: "Anchor"},
		{id: "iceberg", wantCode: codes.OK, wantName: "Iceberg"},
		{id: "kraken", wantCode: codes.NotFound},
		{id: "", wantCode: codes.InvalidArgument},
		{id: "Anchor", wantCode: codes.NotFound}, // ids are case-sensitive
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			resp, err := s.FindByID(context.Background(), &demov1.FindByIDRequest{Id: tt.id})
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			if err != nil {
				return
			}
			if resp.GetItem().GetId() != tt.id || resp.GetItem().GetName() != tt.wantName {
				t.Errorf("item = %v, want id %q name %q", resp.GetItem(), tt.id, tt.wantName)
			}
		})
	}
}
