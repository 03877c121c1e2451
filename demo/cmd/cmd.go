// Package cmd is the linkerd-demo command: one binary whose subcommands run
// the demo's services (items, voting, web) and its traffic generator (bot).
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/linkerd-go/linkerd/demo/bot"
	"github.com/linkerd-go/linkerd/demo/items"
	"github.com/linkerd-go/linkerd/demo/voting"
	"github.com/linkerd-go/linkerd/demo/web"
	demov1 "github.com/linkerd-go/linkerd/proto/demo/v1"
)

// DefaultPort is the port every service listens on by default.
const DefaultPort = 8080

// ShutdownGrace bounds how long a server waits for in-flight requests after
// SIGTERM before closing them.
const ShutdownGrace = 10 * time.Second

// Environment variables that set the default peer addresses.
const (
	EnvItemsAddr  = "ITEMS_ADDR"
	EnvVotingAddr = "VOTING_ADDR"
	EnvWebAddr    = "WEB_ADDR"
)

// Execute runs the command line args (without the program name) and returns
// the process exit code. ctx ending (SIGTERM) stops the servers gracefully.
func Execute(ctx context.Context, args []string, stderr io.Writer) int {
	root := NewCommand(stderr, os.Getenv)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "linkerd-demo:", err)
		return 1
	}
	return 0
}

// NewCommand returns the root command. Logs go to stderr; getenv supplies
// the defaults of the peer addresses.
func NewCommand(stderr io.Writer, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "linkerd-demo",
		Short: "A small voting application to try the mesh with",
		Long: `linkerd-demo runs one part of the "harbour vote" demo application:

  web     the HTML page and JSON API (HTTP/1.1); calls items and voting
  items   the catalogue of choices (gRPC)
  voting  the ballot box (gRPC); votes for "` + voting.BrokenChoice + `" fail on purpose
  bot     votes for random items through web, a few times per second`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetErr(stderr)
	logLevel := root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn or error")
	logger := func() (*slog.Logger, error) {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
			return nil, fmt.Errorf("invalid --log-level %q", *logLevel)
		}
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})), nil
	}
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	defItems := envOr(EnvItemsAddr, "items:"+strconv.Itoa(DefaultPort))
	defVoting := envOr(EnvVotingAddr, "voting:"+strconv.Itoa(DefaultPort))
	defWeb := envOr(EnvWebAddr, "web:"+strconv.Itoa(DefaultPort))

	// server builds a subcommand that listens on --addr/--port and serves.
	server := func(name, short string, flags func(*cobra.Command), serve func(context.Context, net.Listener, *slog.Logger) error) *cobra.Command {
		c := &cobra.Command{Use: name, Short: short, Args: cobra.NoArgs}
		addr := c.Flags().String("addr", ":"+strconv.Itoa(DefaultPort), "address to listen on")
		port := c.Flags().Int("port", 0, "port to listen on; replaces the port of --addr when set")
		if flags != nil {
			flags(c)
		}
		c.RunE = func(c *cobra.Command, _ []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			listen, err := listenAddr(*addr, *port, c.Flags().Changed("port"))
			if err != nil {
				return err
			}
			lis, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listening on %s: %w", listen, err)
			}
			log = log.With("service", name)
			log.Info("serving", "addr", lis.Addr().String())
			return serve(c.Context(), lis, log)
		}
		return c
	}

	root.AddCommand(
		server("items", "Serve the catalogue of choices over gRPC", nil, serveItems),
		server("voting", "Serve the ballot box over gRPC", nil, serveVoting),
	)

	var itemsAddr, votingAddr string
	root.AddCommand(server("web", "Serve the voting page and JSON API over HTTP", func(c *cobra.Command) {
		c.Flags().StringVar(&itemsAddr, "items-addr", defItems, "address of the items gRPC service; $"+EnvItemsAddr+" sets the default")
		c.Flags().StringVar(&votingAddr, "voting-addr", defVoting, "address of the voting gRPC service; $"+EnvVotingAddr+" sets the default")
	}, func(ctx context.Context, lis net.Listener, log *slog.Logger) error {
		return serveWeb(ctx, lis, itemsAddr, votingAddr, log)
	}))

	cfg := bot.Config{}
	botCmd := &cobra.Command{
		Use:   "bot",
		Short: "Vote for random items through the web API, steadily",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			cfg.Log = log.With("service", "bot")
			_, err = bot.Run(c.Context(), cfg)
			return err
		},
	}
	botCmd.Flags().StringVar(&cfg.WebAddr, "web-addr", defWeb, "address (host:port or URL) of the web service; $"+EnvWebAddr+" sets the default")
	botCmd.Flags().Float64Var(&cfg.Rate, "rate", 3, "votes per second")
	botCmd.Flags().IntVar(&cfg.MaxVotes, "votes", 0, "stop after this many votes; 0 means never")
	botCmd.Flags().DurationVar(&cfg.ReportEvery, "report-every", 10*time.Second, "interval between summary log lines")
	root.AddCommand(botCmd)
	return root
}

// listenAddr applies --port to --addr.
func listenAddr(addr string, port int, portSet bool) (string, error) {
	if !portSet {
		return addr, nil
	}
	if port < 0 || port > 65535 {
		return "", fmt.Errorf("invalid --port %d", port)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("invalid --addr %q: %w", addr, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

func serveItems(ctx context.Context, lis net.Listener, log *slog.Logger) error {
	srv := items.NewServer(items.Catalog())
	return serveGRPC(ctx, lis, log, demov1.Items_ServiceDesc.ServiceName, func(g *grpc.Server) {
		demov1.RegisterItemsServer(g, srv)
	})
}

func serveVoting(ctx context.Context, lis net.Listener, log *slog.Logger) error {
	srv := voting.NewServer(voting.BrokenChoice)
	return serveGRPC(ctx, lis, log, demov1.Voting_ServiceDesc.ServiceName, func(g *grpc.Server) {
		demov1.RegisterVotingServer(g, srv)
	})
}

// serveGRPC serves one service, plus the standard gRPC health service, on
// lis until ctx ends; then it reports NOT_SERVING and stops gracefully.
func serveGRPC(ctx context.Context, lis net.Listener, log *slog.Logger, service string, register func(*grpc.Server)) error {
	g := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	register(g)
	hs.SetServingStatus(service, healthpb.HealthCheckResponse_SERVING)

	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving gRPC: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	hs.Shutdown()
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(ShutdownGrace)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		g.Stop()
		<-stopped
	}
	return <-errc
}

// serveWeb serves the web handler on lis until ctx ends, then fails /ready
// and shuts down gracefully.
func serveWeb(ctx context.Context, lis net.Listener, itemsAddr, votingAddr string, log *slog.Logger) error {
	itemsConn, err := grpc.NewClient(itemsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("items client for %s: %w", itemsAddr, err)
	}
	defer itemsConn.Close()
	votingConn, err := grpc.NewClient(votingAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("voting client for %s: %w", votingAddr, err)
	}
	defer votingConn.Close()

	h := web.New(demov1.NewItemsClient(itemsConn), demov1.NewVotingClient(votingConn), log)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	h.Drain()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", err)
	}
	return nil
}
