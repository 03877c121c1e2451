package authz

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
)

// Client keeps Policies up to date from the policy controller's stream.
// While the controller is away the last policy stays in force; a message
// that cannot be parsed is logged and the last good policy kept.
type Client struct {
	Conn     grpc.ClientConnInterface
	Workload string
	Policies *Policies
	Logger   *slog.Logger
	// Backoff between attempts (default 1s).
	Backoff time.Duration
}

// Run watches until ctx is done.
func (c *Client) Run(ctx context.Context) error {
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = time.Second
	}
	api := policyv1.NewInboundPolicyClient(c.Conn)
	for {
		err := c.watch(ctx, api)
		if ctx.Err() != nil {
			return nil
		}
		c.Logger.Info("policy stream ended; keeping the last policy", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

func (c *Client) watch(ctx context.Context, api policyv1.InboundPolicyClient) error {
	stream, err := api.Watch(ctx, &policyv1.WatchRequest{Workload: c.Workload})
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		def, ports, err := inboundpolicy.FromProto(msg)
		if err != nil {
			c.Logger.Warn("ignoring a policy that cannot be parsed; keeping the last one", "err", err)
			continue
		}
		c.Policies.Set(def, ports)
		c.Logger.Debug("inbound policy updated", "default", def.ServerName, "ports", len(ports))
	}
}
