// Package client is the Go client of the viz metrics API
// (proto/viz/v1, served by viz/metricsapi): the `linkerd viz` commands and
// the dashboard's web server use it.
//
// API is the interface they program against: *Client implements it over
// gRPC, and *metricsapi.Server implements it in-process (tests, or a web
// server that embeds the metrics API). Helpers here turn the answers into
// what users see: success rate, RPS, resource kinds as Linkerd spells them.
package client

import (
	"context"
	"fmt"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// DefaultPort is the metrics API's gRPC port, as Linkerd's metrics-api.
const DefaultPort = 8085

// ProxyScrapeJob is the Prometheus job scraping the proxies, in the
// Prometheus configs we write (the viz chart's, the local mesh's), as Linkerd's.
const ProxyScrapeJob = "linkerd-proxy"

// API is the viz metrics API. Errors are gRPC status errors: InvalidArgument
// (unknown kind, bad window), NotFound (a named resource or namespace that
// does not exist), Unavailable (Prometheus cannot be queried); their
// messages are one line, fit to show to a user.
type API interface {
	StatSummary(ctx context.Context, req *vizv1.StatSummaryRequest) (*vizv1.StatSummaryResponse, error)
	Edges(ctx context.Context, req *vizv1.EdgesRequest) (*vizv1.EdgesResponse, error)
	TopRoutes(ctx context.Context, req *vizv1.TopRoutesRequest) (*vizv1.TopRoutesResponse, error)
	ListPods(ctx context.Context, req *vizv1.ListPodsRequest) (*vizv1.ListPodsResponse, error)
	SelfCheck(ctx context.Context, req *vizv1.SelfCheckRequest) (*vizv1.SelfCheckResponse, error)
}

// Client is a gRPC connection to a metrics API server.
type Client struct {
	conn *grpc.ClientConn
	api  vizv1.MetricsAPIClient
}

var _ API = (*Client)(nil)

// Dial returns a client of the metrics API at addr (host:port, plaintext
// gRPC; in a cluster the proxies beside both ends add mTLS). It does not
// connect until the first call.
func Dial(addr string) (*Client, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("metrics API at %s: %w", addr, err)
	}
	return &Client{conn: conn, api: vizv1.NewMetricsAPIClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// StatSummary implements API.
func (c *Client) StatSummary(ctx context.Context, req *vizv1.StatSummaryRequest) (*vizv1.StatSummaryResponse, error) {
	return c.api.StatSummary(ctx, req)
}

// Edges implements API.
func (c *Client) Edges(ctx context.Context, req *vizv1.EdgesRequest) (*vizv1.EdgesResponse, error) {
	return c.api.Edges(ctx, req)
}

// TopRoutes implements API.
func (c *Client) TopRoutes(ctx context.Context, req *vizv1.TopRoutesRequest) (*vizv1.TopRoutesResponse, error) {
	return c.api.TopRoutes(ctx, req)
}

// Authz returns the requests a resource received per authorization decision.
func (c *Client) Authz(ctx context.Context, req *vizv1.AuthzRequest) (*vizv1.AuthzResponse, error) {
	return c.api.Authz(ctx, req)
}

// ListPods implements API.
func (c *Client) ListPods(ctx context.Context, req *vizv1.ListPodsRequest) (*vizv1.ListPodsResponse, error) {
	return c.api.ListPods(ctx, req)
}

// SelfCheck implements API.
func (c *Client) SelfCheck(ctx context.Context, req *vizv1.SelfCheckRequest) (*vizv1.SelfCheckResponse, error) {
	return c.api.SelfCheck(ctx, req)
}
