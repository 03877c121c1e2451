package proxyinit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes returned by Main.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// usageError marks errors in the command line itself.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// flagValues holds the raw flag values before they are parsed into a Config.
type flagValues struct {
	cfg           Config
	inboundIgnore []string
	outboundIgn   []string
	toRedirect    []string
	subnets       []string
	logLevel      string
	logFormat     string
}

// NewCommand returns the linkerd-init command. It logs to stderr and prints
// simulation output to stdout.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	v := &flagValues{cfg: DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "linkerd-init",
		Short: "Redirect a pod's TCP traffic through the Linkerd proxy with iptables (or nftables)",
		Long: "linkerd-init writes NAT rules into the pod's network namespace so that inbound TCP\n" +
			"goes to the proxy's inbound port and outbound TCP to its outbound port, except for\n" +
			"the proxy's own traffic and the ports and subnets configured to be skipped.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unexpected arguments %q", args)}
			}
			return nil
		},
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := v.config(stderr)
			if err != nil {
				return usageError{err}
			}
			return Run(cmd.Context(), cfg, log, stdout)
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	cmd.CompletionOptions.DisableDefaultCmd = true

	f := cmd.Flags()
	f.IntVar(&v.cfg.IncomingProxyPort, "incoming-proxy-port", v.cfg.IncomingProxyPort, "port inbound TCP is redirected to")
	f.IntVar(&v.cfg.OutgoingProxyPort, "outgoing-proxy-port", v.cfg.OutgoingProxyPort, "port outbound TCP is redirected to")
	f.IntVar(&v.cfg.ProxyUID, "proxy-uid", v.cfg.ProxyUID, "user id of the proxy; its traffic is not redirected")
	f.IntVar(&v.cfg.ProxyGID, "proxy-gid", v.cfg.ProxyGID, "group id of the proxy; if set (>= 0), its traffic is not redirected either")
	f.StringSliceVar(&v.inboundIgnore, "inbound-ports-to-ignore", nil, "inbound ports or ranges (a-b) not to redirect; 4190 and 4191 are always ignored")
	f.StringSliceVar(&v.outboundIgn, "outbound-ports-to-ignore", nil, "outbound ports or ranges (a-b) not to redirect")
	f.StringSliceVar(&v.toRedirect, "ports-to-redirect", nil, "if set, only these inbound ports or ranges are redirected")
	f.StringSliceVar(&v.subnets, "subnets-to-ignore", nil, "outbound destination CIDRs not to redirect")
	f.BoolVar(&v.cfg.IPv6, "ipv6", false, "also write the rules with ip6tables")
	f.StringVar(&v.cfg.FirewallMode, "firewall-mode", ModeAuto, "how to write the rules: iptables (its binaries), nftables (netlink, no binary needed) or auto (iptables if a binary is set or on PATH, else nftables)")
	f.StringVar(&v.cfg.FirewallBinPath, "firewall-bin-path", "", "iptables binary (default: iptables-nft, iptables-legacy or iptables, the first found on PATH)")
	f.StringVar(&v.cfg.FirewallSaveBinPath, "firewall-save-bin-path", "", "iptables-save binary (default: the firewall binary with -save appended)")
	f.BoolVar(&v.cfg.UseWaitFlag, "use-wait-flag", false, "pass -w to iptables to wait for the xtables lock")
	f.IntVar(&v.cfg.TimeoutCloseWaitSecs, "timeout-close-wait-secs", 0, "if > 0, set "+closeWaitSysctl+" to this many seconds")
	f.BoolVar(&v.cfg.Simulate, "simulate", false, "print the commands instead of running them")
	f.StringVar(&v.cfg.NetNS, "netns", "", "path of the network namespace to configure (default: the current one)")
	f.StringVar(&v.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&v.logFormat, "log-format", "plain", "log format: plain or json")
	return cmd
}

// config turns the flag values into a Config and a logger.
func (v *flagValues) config(stderr io.Writer) (Config, *slog.Logger, error) {
	cfg := v.cfg
	var err error
	if cfg.InboundPortsToIgnore, err = ParsePortRanges(v.inboundIgnore); err != nil {
		return Config{}, nil, fmt.Errorf("--inbound-ports-to-ignore: %w", err)
	}
	if cfg.OutboundPortsToIgnore, err = ParsePortRanges(v.outboundIgn); err != nil {
		return Config{}, nil, fmt.Errorf("--outbound-ports-to-ignore: %w", err)
	}
	if cfg.PortsToRedirect, err = ParsePortRanges(v.toRedirect); err != nil {
		return Config{}, nil, fmt.Errorf("--ports-to-redirect: %w", err)
	}
	if cfg.SubnetsToIgnore, err = ParseSubnets(v.subnets); err != nil {
		return Config{}, nil, fmt.Errorf("--subnets-to-ignore: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return Config{}, nil, err
	}
	log, err := newLogger(stderr, v.logLevel, v.logFormat)
	if err != nil {
		return Config{}, nil, err
	}
	return cfg, log, nil
}

// newLogger builds the slog logger for --log-level and --log-format. Level
// names from Linkerd's Go components (trace, fatal, panic) are accepted too.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "trace", "debug":
		lvl = slog.LevelDebug
	case "info", "":
		lvl = slog.LevelInfo
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error", "fatal", "panic":
		lvl = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level: unknown level %q", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "plain", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format: unknown format %q (want plain or json)", format)
	}
}

// Main runs linkerd-init with args (without the program name) and returns
// the process exit code: 0 on success, 1 on failure, 2 for a bad command line.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := NewCommand(stdout, stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "linkerd-init: %v\n", err)
	var uerr usageError
	if errors.As(err, &uerr) {
		return ExitUsage
	}
	return ExitError
}
