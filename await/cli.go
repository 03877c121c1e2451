package await

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes returned by Main, besides the command's own.
const (
	ExitOK = 0
	// ExitNotReady: the proxy did not become ready before --timeout.
	ExitNotReady = 1
	// ExitUsage: bad command line.
	ExitUsage = 2
	// ExitStartFailed: the command could not be started (EX_OSERR, as Linkerd's linkerd-await).
	ExitStartFailed = 71
)

// Environment variables read by Main.
const (
	// EnvDisabled, when non-empty, skips waiting for the proxy.
	EnvDisabled = "LINKERD_AWAIT_DISABLED"
	// EnvLinkerdDisabled is an older name for EnvDisabled, also honoured.
	EnvLinkerdDisabled = "LINKERD_DISABLED"
	// EnvVerbose, when set to a true value, enables --verbose.
	EnvVerbose = "LINKERD_AWAIT_VERBOSE"
)

// Options are linkerd-await's settings.
type Options struct {
	// URI is the proxy's readiness endpoint.
	URI string
	// Backoff is the longest wait between readiness checks.
	Backoff time.Duration
	// Timeout bounds the wait for readiness; 0 waits forever.
	Timeout time.Duration
	// Verbose logs every readiness check.
	Verbose bool
	// Shutdown asks the proxy to shut down after the command exits.
	Shutdown bool
	// Disabled skips waiting for readiness.
	Disabled bool
	// Command is the program and arguments to run; empty means only wait.
	Command []string
}

type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// parseArgs parses the command line and environment into Options.
func parseArgs(args []string, getenv func(string) string, stdout, stderr io.Writer) (Options, bool, error) {
	opts := Options{URI: DefaultURI, Backoff: DefaultBackoff}
	var port int
	ran := false
	cmd := &cobra.Command{
		Use:   "linkerd-await [flags] [--] [CMD [ARGS...]]",
		Short: "Wait for the Linkerd proxy to be ready, then run a command",
		Long: "linkerd-await polls the local Linkerd proxy's readiness endpoint until it answers\n" +
			"200 OK, then runs CMD with the same standard streams, forwards SIGINT and SIGTERM\n" +
			"to it and exits with its exit code. Without CMD it only waits.\n" +
			"Set " + EnvDisabled + " to skip waiting.",
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, rest []string) error {
			ran = true
			opts.Command = rest
			if cmd.Flags().Changed("port") {
				u, err := withPort(opts.URI, port)
				if err != nil {
					return usageError{err}
				}
				opts.URI = u
			}
			return nil
		},
	}
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	cmd.CompletionOptions.DisableDefaultCmd = true
	f := cmd.Flags()
	f.SetInterspersed(false) // everything from CMD on belongs to CMD
	f.StringVarP(&opts.URI, "uri", "u", opts.URI, "the proxy's readiness endpoint")
	f.IntVarP(&port, "port", "p", 4191, "port of the proxy admin server (replaces the port of --uri)")
	f.DurationVarP(&opts.Backoff, "backoff", "b", opts.Backoff, "longest wait between readiness checks (they start 10ms apart and back off exponentially)")
	f.DurationVarP(&opts.Timeout, "timeout", "t", 0, "give up if the proxy is not ready after this long (0: wait forever)")
	f.BoolVarP(&opts.Verbose, "verbose", "v", isTrue(getenv(EnvVerbose)), "log every readiness check (env "+EnvVerbose+")")
	f.BoolVarP(&opts.Shutdown, "shutdown", "S", false, "after CMD exits, ask the proxy to shut down (POST /shutdown on the admin server)")
	if err := cmd.Execute(); err != nil {
		return Options{}, false, err
	}
	if !ran { // --help
		return Options{}, false, nil
	}
	if opts.Backoff <= 0 {
		return Options{}, false, usageError{fmt.Errorf("--backoff must be positive, got %v", opts.Backoff)}
	}
	if opts.Timeout < 0 {
		return Options{}, false, usageError{fmt.Errorf("--timeout must not be negative, got %v", opts.Timeout)}
	}
	if _, err := ShutdownURL(opts.URI); err != nil {
		return Options{}, false, usageError{fmt.Errorf("--uri: %w", err)}
	}
	if opts.Shutdown && len(opts.Command) == 0 {
		return Options{}, false, usageError{errors.New("--shutdown needs a command to run")}
	}
	opts.Disabled = getenv(EnvDisabled) != "" || getenv(EnvLinkerdDisabled) != ""
	return opts, true, nil
}

// withPort replaces the port in uri.
func withPort(uri string, port int) (string, error) {
	if port < 1 || port > 65535 {
		return "", fmt.Errorf("--port %d is not between 1 and 65535", port)
	}
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("--uri %q is not an absolute URL", uri)
	}
	u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
	return u.String(), nil
}

// isTrue reports whether an environment value turns a switch on: any
// non-empty value except the false ones strconv.ParseBool knows ("0", "false").
func isTrue(s string) bool {
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	return err != nil || b
}

// Main runs linkerd-await with args (without the program name) and returns
// the process exit code. getenv reads the environment (os.Getenv in main).
func Main(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, run, err := parseArgs(args, getenv, stdout, stderr)
	if err != nil {
		// Every parse error is about the command line.
		fmt.Fprintf(stderr, "linkerd-await: %v\n", err)
		return ExitUsage
	}
	if !run { // --help was printed
		return ExitOK
	}
	level := slog.LevelWarn
	if opts.Verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	return Run(ctx, opts, Stdio{Stdin: stdin, Stdout: stdout, Stderr: stderr}, sigs, NewHTTPClient(), log)
}

// Run waits for the proxy (unless opts.Disabled), runs opts.Command if any,
// and with opts.Shutdown then asks the proxy to shut down; it returns the exit
// code. A signal received while waiting ends the wait with exit code
// 128+signal; signals received while the command runs are forwarded to it.
func Run(ctx context.Context, opts Options, stdio Stdio, signals <-chan os.Signal, client *http.Client, log *slog.Logger) int {
	if opts.Disabled {
		log.Info("readiness check skipped", "reason", "disabled by environment")
	} else if sig, err := waitOrSignal(ctx, opts, signals, client, log); sig != nil {
		log.Warn("signal received while waiting for the proxy", "signal", sig.String())
		return signalExitCode(sig)
	} else if err != nil {
		log.Error("proxy did not become ready", "error", err)
		return ExitNotReady
	}
	if len(opts.Command) == 0 {
		return ExitOK
	}

	code, err := RunCommand(ctx, opts.Command, stdio, signals)
	if err != nil {
		log.Error("could not run command", "error", err)
		code = ExitStartFailed
	}
	if opts.Shutdown {
		shutdownURL, err := ShutdownURL(opts.URI)
		if err == nil {
			err = RequestShutdown(ctx, client, shutdownURL)
		}
		if err != nil {
			log.Warn("could not shut down the proxy", "error", err)
		} else {
			log.Info("asked the proxy to shut down", "uri", shutdownURL)
		}
	}
	return code
}

// waitOrSignal waits for readiness, giving up when opts.Timeout passes or a
// signal arrives; it returns the signal if that is why it stopped.
func waitOrSignal(ctx context.Context, opts Options, signals <-chan os.Signal, client *http.Client, log *slog.Logger) (os.Signal, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opts.Timeout > 0 {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeoutCause(ctx, opts.Timeout, fmt.Errorf("timed out after %v", opts.Timeout))
		defer cancelTimeout()
	}

	var got os.Signal
	watcherDone := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case got = <-signals:
			cancel()
		case <-stop:
		}
	}()
	err := WaitReady(ctx, client, opts.URI, opts.Backoff, log)
	close(stop)
	<-watcherDone
	return got, err
}

// signalExitCode is 128+N for signal N, as a shell reports death by signal.
func signalExitCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return ExitNotReady
}
