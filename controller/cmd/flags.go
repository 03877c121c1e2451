package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/spf13/cobra"
)

// usageError marks bad command-line arguments.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func isUsageError(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

// flagCommand returns a subcommand whose arguments are parsed by a Go
// flag.FlagSet, so that Linkerd's single-dash flags (-addr=:8080) work.
// setup defines the flags and returns the function to run once they are
// parsed.
func flagCommand(env Env, use, short string, setup func(fs *flag.FlagSet) func(ctx context.Context) error) *cobra.Command {
	return &cobra.Command{
		Use:                use + " [flags]",
		Short:              short,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := flag.NewFlagSet(use, flag.ContinueOnError)
			fs.SetOutput(env.Stderr)
			run := setup(fs)
			fs.Usage = func() {
				fmt.Fprintf(env.Stderr, "Usage: linkerd-controller %s [flags]\n\n%s\n\nFlags:\n", use, short)
				fs.PrintDefaults()
			}
			if err := fs.Parse(args); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return nil
				}
				return usageError{fmt.Errorf("%s: %w", use, err)}
			}
			if fs.NArg() > 0 {
				return usageError{fmt.Errorf("%s: unexpected arguments %q", use, fs.Args())}
			}
			return run(cmd.Context())
		},
	}
}

// logFlags are the logging flags every component takes.
type logFlags struct {
	level  string
	format string
}

func addLogFlags(fs *flag.FlagSet) *logFlags {
	l := &logFlags{}
	fs.StringVar(&l.level, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "plain", "log format: plain or json")
	return l
}

// logger builds the logger the flags ask for, writing to w.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(l.level) {
	case "trace":
		level = slog.LevelDebug - 4
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error", "fatal", "panic":
		level = slog.LevelError
	default:
		return nil, usageError{fmt.Errorf("unknown -log-level %q", l.level)}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "plain", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Errorf("unknown -log-format %q (want plain or json)", l.format)}
}

// component is a control-plane service: it binds its listeners, then
// serves until its context ends.
type component interface {
	listen() error
	run(ctx context.Context) error
}

// componentCommand is a subcommand that builds a component from its flags,
// with the shared log flags, and runs it.
func componentCommand(env Env, name, short string, setup func(fs *flag.FlagSet) (*logFlags, func(*slog.Logger) (component, error))) *cobra.Command {
	return flagCommand(env, name, short, func(fs *flag.FlagSet) func(context.Context) error {
		logs, build := setup(fs)
		return func(ctx context.Context) error {
			log, err := logs.logger(env.Stderr)
			if err != nil {
				return err
			}
			c, err := build(log)
			if err != nil {
				return err
			}
			if err := c.listen(); err != nil {
				return err
			}
			return c.run(ctx)
		}
	})
}

// listenPair binds a component's API (-addr) and admin (-admin-addr) addresses.
func listenPair(addr, adminAddr string) (lis, adminLis net.Listener, err error) {
	lis, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on -addr: %w", err)
	}
	adminLis, err = net.Listen("tcp", adminAddr)
	if err != nil {
		lis.Close()
		return nil, nil, fmt.Errorf("listen on -admin-addr: %w", err)
	}
	return lis, adminLis, nil
}

// runGroup runs a component's tasks, each in its own goroutine, until ctx
// is done (then it returns nil) or a task fails (then it returns that
// error). Either way it then cancels the tasks' context, calls stop (if not
// nil) to stop what does not stop with the context, and waits for every
// task to return. A task returns nil once its context is done.
func runGroup(ctx context.Context, log *slog.Logger, stop func(), tasks ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(tasks))
	var wg sync.WaitGroup
	for _, task := range tasks {
		wg.Go(func() {
			if err := task(ctx); err != nil {
				errc <- err
			}
		})
	}
	var err error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
	}
	cancel()
	if stop != nil {
		stop()
	}
	wg.Wait()
	return err
}
