package proxyinit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// closeWaitSysctl is the conntrack setting --timeout-close-wait-secs changes.
const closeWaitSysctl = "net.netfilter.nf_conntrack_tcp_timeout_close_wait"

// autoFirewallBins are tried in order when no binary is configured.
var autoFirewallBins = []string{"iptables-nft", "iptables-legacy", "iptables"}

// Run applies cfg: it enters cfg.NetNS if set, tunes the close-wait timeout
// if asked, then writes the rules for IPv4 (and IPv6 when cfg.IPv6) and logs
// the resulting nat table. With cfg.Simulate it only prints to out what it
// would run.
func Run(ctx context.Context, cfg Config, log *slog.Logger, out io.Writer) error {
	r := &runner{
		exec:      execCommand,
		lookPath:  exec.LookPath,
		applyNft:  applyNft,
		sysctlDir: "/proc/sys",
		log:       log,
		out:       out,
	}
	if cfg.NetNS != "" && !cfg.Simulate {
		return inNetNS(cfg.NetNS, func() error { return r.run(ctx, cfg) })
	}
	return r.run(ctx, cfg)
}

// runner holds Run's side effects so tests can replace them.
type runner struct {
	// exec runs a command and returns its stdout; errors include stderr.
	exec     func(ctx context.Context, name string, args ...string) (string, error)
	lookPath func(string) (string, error)
	// applyNft writes rule sets through netlink; it returns the number of
	// rules each table holds afterwards.
	applyNft  func([]NftRuleSet) ([]int, error)
	sysctlDir string
	log       *slog.Logger
	out       io.Writer
}

// family is one address family's rules and the binaries that apply them.
type family struct {
	rules   RuleSet
	bin     string
	saveBin string
}

func (r *runner) run(ctx context.Context, cfg Config) error {
	if r.mode(cfg) == ModeNftables {
		return r.runNft(cfg)
	}
	families, err := r.plan(cfg)
	if err != nil {
		return err
	}
	if cfg.Simulate {
		return r.simulate(cfg, families)
	}

	if cfg.TimeoutCloseWaitSecs > 0 {
		if err := r.setCloseWait(cfg.TimeoutCloseWaitSecs); err != nil {
			r.log.Warn("could not set close-wait timeout", "sysctl", closeWaitSysctl, "error", err)
		}
	}
	for _, f := range families {
		if before, err := r.exec(ctx, f.saveBin, "-t", Table); err == nil {
			r.log.Debug("nat table before configuration", "family", f.rules.Family.String(), "command", f.saveBin+" -t "+Table, "output", before)
		}
		for _, c := range f.rules.Commands(cfg.UseWaitFlag) {
			if err := r.runCommand(ctx, f.bin, c); err != nil {
				return fmt.Errorf("configuring %s rules: %w", f.rules.Family, err)
			}
		}
		after, err := r.exec(ctx, f.saveBin, "-t", Table)
		if err != nil {
			return fmt.Errorf("reading back %s rules: %w", f.rules.Family, err)
		}
		r.log.Info("nat table after configuration", "family", f.rules.Family.String(), "command", f.saveBin+" -t "+Table, "output", after)
	}
	return nil
}

// mode resolves cfg.FirewallMode: auto is iptables when a binary is
// configured or one of autoFirewallBins is on PATH, nftables otherwise.
func (r *runner) mode(cfg Config) string {
	switch cfg.FirewallMode {
	case ModeIPTables, ModeNftables:
		return cfg.FirewallMode
	}
	if cfg.FirewallBinPath != "" {
		return ModeIPTables
	}
	for _, b := range autoFirewallBins {
		if _, err := r.lookPath(b); err == nil {
			return ModeIPTables
		}
	}
	return ModeNftables
}

// runNft writes the rules through netlink (nftables), or prints them as an
// nft script when simulating.
func (r *runner) runNft(cfg Config) error {
	fams := []Family{IPv4}
	if cfg.IPv6 {
		fams = append(fams, IPv6)
	}
	var sets []NftRuleSet
	for _, fam := range fams {
		s, err := BuildNftRules(cfg, fam)
		if err != nil {
			return err
		}
		sets = append(sets, s)
	}
	if cfg.Simulate {
		var b strings.Builder
		if cfg.NetNS != "" {
			fmt.Fprintf(&b, "# in network namespace %s\n", cfg.NetNS)
		}
		if cfg.TimeoutCloseWaitSecs > 0 {
			fmt.Fprintf(&b, "sysctl -w %s=%d\n", closeWaitSysctl, cfg.TimeoutCloseWaitSecs)
		}
		for _, s := range sets {
			fmt.Fprintf(&b, "# %s rules (nft -f)\n%s", s.Family, s.script())
		}
		if _, err := io.WriteString(r.out, b.String()); err != nil {
			return fmt.Errorf("writing simulation output: %w", err)
		}
		return nil
	}
	if cfg.TimeoutCloseWaitSecs > 0 {
		if err := r.setCloseWait(cfg.TimeoutCloseWaitSecs); err != nil {
			r.log.Warn("could not set close-wait timeout", "sysctl", closeWaitSysctl, "error", err)
		}
	}
	counts, err := r.applyNft(sets)
	if err != nil {
		return fmt.Errorf("configuring rules: %w", err)
	}
	for i, s := range sets {
		if counts[i] != len(s.Rules) {
			return fmt.Errorf("reading back %s rules: table %s holds %d rules, want %d", s.Family, NftTable, counts[i], len(s.Rules))
		}
		r.log.Info("nat table after configuration", "family", s.Family.String(), "mode", ModeNftables,
			"table", nftFamilyName(s.Family)+" "+NftTable, "rules", strings.Join(s.Lines(), "; "))
	}
	return nil
}

// plan resolves the binaries and builds the rules for every family.
func (r *runner) plan(cfg Config) ([]family, error) {
	bin, saveBin := cfg.FirewallBinPath, cfg.FirewallSaveBinPath
	if bin == "" {
		bin = autoFirewallBins[len(autoFirewallBins)-1]
		for _, candidate := range autoFirewallBins {
			if _, err := r.lookPath(candidate); err == nil {
				bin = candidate
				break
			}
		}
	}
	if saveBin == "" {
		saveBin = bin + "-save"
	}

	fams := []Family{IPv4}
	if cfg.IPv6 {
		fams = append(fams, IPv6)
	}
	var out []family
	for _, fam := range fams {
		rules, err := BuildRules(cfg, fam)
		if err != nil {
			return nil, err
		}
		f := family{rules: rules, bin: bin, saveBin: saveBin}
		if fam == IPv6 {
			if f.bin, err = ip6Variant(bin); err != nil {
				return nil, err
			}
			if f.saveBin, err = ip6Variant(saveBin); err != nil {
				return nil, err
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// ip6Variant maps an iptables binary to its ip6tables sibling:
// "/usr/sbin/iptables-nft-save" → "/usr/sbin/ip6tables-nft-save".
func ip6Variant(bin string) (string, error) {
	dir, base := filepath.Split(bin)
	if !strings.HasPrefix(base, "iptables") {
		return "", fmt.Errorf("cannot derive the ip6tables binary from %q: name does not start with \"iptables\"", bin)
	}
	return dir + "ip6" + strings.TrimPrefix(base, "ip"), nil
}

// runCommand runs c.Args and, if that fails and c.OrElse is set, c.OrElse.
func (r *runner) runCommand(ctx context.Context, bin string, c Command) error {
	_, err := r.exec(ctx, bin, c.Args...)
	if err == nil {
		return nil
	}
	if c.OrElse == nil {
		return err
	}
	r.log.Debug("command failed, running alternative", "error", err)
	if _, err2 := r.exec(ctx, bin, c.OrElse...); err2 != nil {
		return fmt.Errorf("%w (after: %w)", err2, err)
	}
	return nil
}

func (r *runner) setCloseWait(secs int) error {
	path := filepath.Join(r.sysctlDir, strings.ReplaceAll(closeWaitSysctl, ".", "/"))
	if err := os.WriteFile(path, []byte(strconv.Itoa(secs)+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	r.log.Info("set close-wait timeout", "sysctl", closeWaitSysctl, "seconds", secs)
	return nil
}

// simulate prints what run would do, as a shell script.
func (r *runner) simulate(cfg Config, families []family) error {
	var b strings.Builder
	if cfg.NetNS != "" {
		fmt.Fprintf(&b, "# in network namespace %s\n", cfg.NetNS)
	}
	if cfg.TimeoutCloseWaitSecs > 0 {
		fmt.Fprintf(&b, "sysctl -w %s=%d\n", closeWaitSysctl, cfg.TimeoutCloseWaitSecs)
	}
	for _, f := range families {
		fmt.Fprintf(&b, "# %s rules\n", f.rules.Family)
		for _, c := range f.rules.Commands(cfg.UseWaitFlag) {
			b.WriteString(shellJoin(f.bin, c.Args))
			if c.OrElse != nil {
				b.WriteString(" || ")
				b.WriteString(shellJoin(f.bin, c.OrElse))
			}
			b.WriteByte('\n')
		}
		b.WriteString(shellJoin(f.saveBin, []string{"-t", Table}) + "\n")
	}
	if _, err := io.WriteString(r.out, b.String()); err != nil {
		return fmt.Errorf("writing simulation output: %w", err)
	}
	return nil
}

// shellJoin formats a command line, quoting arguments the shell would split.
func shellJoin(bin string, args []string) string {
	parts := make([]string, 0, len(args)+1)
	for _, a := range append([]string{bin}, args...) {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`|&;<>()*?[]#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// execCommand runs name with args, returning stdout. Errors name the command
// and carry its stderr.
func execCommand(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return stdout.String(), fmt.Errorf("%s: %w", shellJoin(name, args), err)
		}
		return stdout.String(), fmt.Errorf("%s: %w: %s", shellJoin(name, args), err, msg)
	}
	return stdout.String(), nil
}
