// Command testapp is the application that integration tests run inside pods,
// behind the proxy. One binary serves several protocols, each on its own
// port:
//
//	--http 8080    HTTP/1.1 and prior-knowledge HTTP/2 (h2c) on the same port
//	--grpc 8082    the gRPC interop TestService, plus grpc.health.v1
//	--tcp 8083     raw TCP echo that honours half-close
//	--banner 8084  a server-speaks-first line echo ("220 testapp ready")
//
// A port of 0 disables that server. All servers listen on --host (0.0.0.0 by
// default). SIGTERM or SIGINT shuts down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	name            string
	delay           time.Duration
	host            string
	httpPort        int
	grpcPort        int
	tcpPort         int
	bannerPort      int
	shutdownTimeout time.Duration
	logLevel        slog.Level
}

// parseFlags parses the command line arguments (without the program name).
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("testapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.name, "name", "testapp", "name reported by GET /")
	fs.StringVar(&cfg.host, "host", "0.0.0.0", "address every server listens on")
	fs.DurationVar(&cfg.delay, "delay", 0, "added before every HTTP response (a slow backend)")
	fs.IntVar(&cfg.httpPort, "http", 8080, "HTTP/1.1 + h2c port (0 disables)")
	fs.IntVar(&cfg.grpcPort, "grpc", 8082, "gRPC port (0 disables)")
	fs.IntVar(&cfg.tcpPort, "tcp", 8083, "TCP echo port (0 disables)")
	fs.IntVar(&cfg.bannerPort, "banner", 8084, "server-speaks-first port (0 disables)")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 5*time.Second, "how long to wait for in-flight requests on shutdown")
	fs.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "log level (debug, info, warn, error)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	for _, p := range []struct {
		flag string
		port int
	}{{"http", cfg.httpPort}, {"grpc", cfg.grpcPort}, {"tcp", cfg.tcpPort}, {"banner", cfg.bannerPort}} {
		if p.port < 0 || p.port > 65535 {
			return config{}, fmt.Errorf("--%s: port %d out of range", p.flag, p.port)
		}
	}
	if cfg.shutdownTimeout <= 0 {
		return config{}, errors.New("--shutdown-timeout must be positive")
	}
	return cfg, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("testapp failed", "err", err)
		os.Exit(1)
	}
	logger.Info("testapp stopped")
}

// listeners holds one listener per server; nil means disabled.
type listeners struct {
	http, grpc, tcp, banner net.Listener
}

func (l listeners) closeAll() {
	for _, ln := range []net.Listener{l.http, l.grpc, l.tcp, l.banner} {
		if ln != nil {
			ln.Close()
		}
	}
}

// run opens the configured ports and serves until ctx is done.
func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	var lns listeners
	for _, p := range []struct {
		name string
		port int
		ln   *net.Listener
	}{
		{"http", cfg.httpPort, &lns.http},
		{"grpc", cfg.grpcPort, &lns.grpc},
		{"tcp", cfg.tcpPort, &lns.tcp},
		{"banner", cfg.bannerPort, &lns.banner},
	} {
		if p.port == 0 {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.host, strconv.Itoa(p.port)))
		if err != nil {
			lns.closeAll()
			return fmt.Errorf("%s server: %w", p.name, err)
		}
		*p.ln = ln
	}
	return serve(ctx, cfg, logger, lns)
}

// server is one protocol server run by serve.
type server struct {
	name     string
	ln       net.Listener
	serve    func(net.Listener) error
	shutdown func(context.Context) error
}

// serve runs a server on every non-nil listener until ctx is done or one of
// them fails, then shuts all of them down within cfg.shutdownTimeout. It
// takes ownership of the listeners.
func serve(ctx context.Context, cfg config, logger *slog.Logger, lns listeners) error {
	var servers []server
	if lns.http != nil {
		srv := newHTTPServer(cfg.name, cfg.delay, logger)
		servers = append(servers, server{"http", lns.http, srv.Serve, srv.Shutdown})
	}
	if lns.grpc != nil {
		srv := newGRPCServer()
		servers = append(servers, server{"grpc", lns.grpc, srv.Serve, srv.Shutdown})
	}
	if lns.tcp != nil {
		srv := newStreamServer("tcp", logger, echoConn)
		servers = append(servers, server{"tcp", lns.tcp, srv.Serve, srv.Shutdown})
	}
	if lns.banner != nil {
		srv := newStreamServer("banner", logger, bannerConn)
		servers = append(servers, server{"banner", lns.banner, srv.Serve, srv.Shutdown})
	}
	if len(servers) == 0 {
		return errors.New("every server is disabled")
	}

	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for _, s := range servers {
		logger.Info("listening", "server", s.name, "addr", s.ln.Addr().String())
		wg.Go(func() {
			if err := s.serve(s.ln); err != nil {
				errc <- fmt.Errorf("%s server: %w", s.name, err)
			}
		})
	}

	var err error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", cfg.shutdownTimeout)
	case err = <-errc:
		logger.Error("server failed; shutting down", "err", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	var swg sync.WaitGroup
	shutdownErrs := make([]error, len(servers))
	for i, s := range servers {
		swg.Go(func() {
			if err := s.shutdown(shutdownCtx); err != nil {
				shutdownErrs[i] = fmt.Errorf("%s shutdown: %w", s.name, err)
			}
		})
	}
	swg.Wait()
	wg.Wait()
	return errors.Join(append([]error{err}, shutdownErrs...)...)
}
