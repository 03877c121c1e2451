// Package items is the demo's catalogue service: the choices users vote for,
// served over gRPC (linkerdgo.demo.v1.Items).
package items

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	demov1 "github.com/linkerd-go/linkerd/proto/demo/v1"
)

// Item is one choice of the catalogue.
type Item struct {
	ID     string
	Name   string
	Symbol string
}

// Catalog returns the default catalogue: a dozen things seen around a
// harbour. It includes "iceberg", the choice the voting service refuses on
// purpose.
func Catalog() []Item {
	return []Item{
		{ID: "anchor", Name: "Anchor", Symbol: "⚓"},
		{ID: "sailboat", Name: "Sailboat", Symbol: "⛵"},
		{ID: "ship", Name: "Ship", Symbol: "🚢"},
		{ID: "lifebuoy", Name: "Lifebuoy", Symbol: "🛟"},
		{ID: "compass", Name: "Compass", Symbol: "🧭"},
		{ID: "wave", Name: "Wave", Symbol: "🌊"},
		{ID: "whale", Name: "Whale", Symbol: "🐳"},
		{ID: "dolphin", Name: "Dolphin", Symbol: "🐬"},
		{ID: "octopus", Name: "Octopus", Symbol: "🐙"},
		{ID: "crab", Name: "Crab", Symbol: "🦀"},
		{ID: "shell", Name: "Shell", Symbol: "🐚"},
		{ID: "iceberg", Name: "Iceberg", Symbol: "🧊"},
	}
}

// Server implements the Items gRPC service over a fixed catalogue.
type Server struct {
	demov1.UnimplementedItemsServer
	items []Item
	byID  map[string]Item
}

var _ demov1.ItemsServer = (*Server)(nil)

// NewServer returns a server for catalog. Later duplicates of an ID are
// ignored.
func NewServer(catalog []Item) *Server {
	s := &Server{byID: make(map[string]Item, len(catalog))}
	for _, it := range catalog {
		if _, dup := s.byID[it.ID]; dup {
			continue
		}
		s.byID[it.ID] = it
		s.items = append(s.items, it)
	}
	return s
}

// List returns every item in catalogue order.
func (s *Server) List(context.Context, *demov1.ListRequest) (*demov1.ListResponse, error) {
	resp := &demov1.ListResponse{Items: make([]*demov1.Item, 0, len(s.items))}
	for _, it := range s.items {
		resp.Items = append(resp.Items, it.proto())
	}
	return resp, nil
}

// FindByID returns the item with the requested ID.
func (s *Server) FindByID(_ context.Context, req *demov1.FindByIDRequest) (*demov1.FindByIDResponse, error) {
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "item id is required")
	}
	it, ok := s.byID[req.GetId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no item %q", req.GetId())
	}
	return &demov1.FindByIDResponse{Item: it.proto()}, nil
}

func (it Item) proto() *demov1.Item {
	return &demov1.Item{Id: it.ID, Name: it.Name, Symbol: it.Symbol}
}
