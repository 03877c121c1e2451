// Command linkerd-proxy is the mesh's sidecar proxy, configured by
// LINKERD2_PROXY_* environment variables.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/linkerd-go/linkerd/proxy/app"
	"github.com/linkerd-go/linkerd/proxy/config"
)

func main() {
	environ := os.Environ()
	cfg, err := config.FromEnv(environ)
	if err != nil {
		fmt.Fprintf(os.Stderr, "linkerd-proxy: invalid configuration: %v\n", err)
		os.Exit(2)
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.Level)
	hopts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if cfg.LogFormat == "json" {
		handler = slog.NewJSONHandler(os.Stderr, hopts)
	}
	log := slog.New(handler)
	for _, name := range cfg.Unknown {
		log.Warn("ignoring unknown environment variable", "name", name)
	}

	p, err := app.New(cfg, app.Options{Environ: environ, LogLevel: level, Logger: log})
	if err != nil {
		log.Error("proxy failed to start", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := p.Run(ctx); err != nil {
		log.Error("proxy failed", "err", err)
		os.Exit(1)
	}
}
