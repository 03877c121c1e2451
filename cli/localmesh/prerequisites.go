package localmesh

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// prerequisitesTxt is the list of commands the mesh needs, shared with .ci/run.
//
//go:embed prerequisites.txt
var prerequisitesTxt []byte

// Tool is a command the local mesh runs and the Debian package providing it.
type Tool struct {
	Command, Package string
	// Optional tools are reported but do not stop Up.
	Optional bool
	// For says what the mesh uses it for.
	For string
}

// Tools returns the commands the local mesh needs (prerequisites.txt).
func Tools() []Tool {
	var tools []Tool
	sc := bufio.NewScanner(bytes.NewReader(prerequisitesTxt))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			panic(fmt.Sprintf("localmesh: bad line in prerequisites.txt: %q", line))
		}
		tools = append(tools, Tool{Command: f[0], Package: f[1], Optional: f[2] == "optional", For: strings.Join(f[3:], " ")})
	}
	return tools
}

// Problem is one missing prerequisite and what fixes it.
type Problem struct {
	// What is missing.
	What string
	// Fix is the command or action that provides it.
	Fix string
	// Optional problems do not stop Up.
	Optional bool
}

func (p Problem) String() string { return p.What + "; fix: " + p.Fix }

// ErrPrerequisites is wrapped by the error Up returns when prerequisites
// are missing.
var ErrPrerequisites = errors.New("the local mesh cannot start on this machine")

// PrerequisiteError lists every missing prerequisite.
type PrerequisiteError struct {
	Problems []Problem
	notRoot  error // CheckPrivileges's error, if it failed
}

func (e *PrerequisiteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %d missing prerequisite(s):", ErrPrerequisites, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p.String())
	}
	var pkgs []string
	for _, p := range e.Problems {
		if pkg, ok := strings.CutPrefix(p.Fix, "apt-get install -y "); ok && !slices.Contains(pkgs, pkg) {
			pkgs = append(pkgs, pkg)
		}
	}
	if len(pkgs) > 1 {
		b.WriteString("\n  all packages at once: apt-get install -y " + strings.Join(pkgs, " "))
	}
	return b.String()
}

// Unwrap lets errors.Is find ErrPrerequisites and ErrNotRoot.
func (e *PrerequisiteError) Unwrap() []error {
	if e.notRoot != nil {
		return []error{ErrPrerequisites, e.notRoot}
	}
	return []error{ErrPrerequisites}
}

// prereqEnv is what the check reads of the machine; tests replace it.
type prereqEnv struct {
	privileges func() error
	lookPath   func(string) (string, error)
	stat       func(string) (os.FileInfo, error)
	routes     func(context.Context) ([]netip.Prefix, error)
	// run runs a command (apt-get), its output to log.
	run  func(ctx context.Context, log io.Writer, name string, args ...string) error
	glob func(pattern string) ([]string, error)
}

var machine = prereqEnv{
	privileges: CheckPrivileges,
	lookPath:   exec.LookPath,
	stat:       os.Stat,
	routes:     hostRoutes,
	run:        runLogged,
	glob:       filepath.Glob,
}

// runLogged runs name with its output to log, apt-get without questions.
func runLogged(ctx context.Context, log io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// Prerequisites checks everything Up needs before it creates anything:
// root and its capabilities, network namespaces in the kernel, the tools of
// prerequisites.txt, the mesh's binaries, and a pods' subnet no route of
// the host already covers. It returns every problem found, optional ones
// (a missing Prometheus) included.
func (m *Mesh) Prerequisites(ctx context.Context) []Problem {
	return m.prerequisites(ctx, machine)
}

func (m *Mesh) prerequisites(ctx context.Context, env prereqEnv) []Problem {
	var probs []Problem
	if err := env.privileges(); err != nil {
		probs = append(probs, Problem{What: err.Error(), Fix: "run it as root (sudo) with CAP_NET_ADMIN and CAP_SYS_ADMIN"})
	}
	if _, err := env.stat("/proc/self/ns/net"); err != nil {
		probs = append(probs, Problem{What: "the kernel has no network namespaces", Fix: "a Linux kernel built with CONFIG_NET_NS"})
	}
	for _, t := range Tools() {
		if _, err := env.lookPath(t.Command); err != nil {
			probs = append(probs, Problem{What: fmt.Sprintf("%s not found in PATH (%s)", t.Command, t.For), Fix: "apt-get install -y " + t.Package, Optional: t.Optional})
		}
	}
	for _, b := range []string{"linkerd-proxy", "linkerd-init", "linkerd-controller"} {
		if _, err := env.stat(m.bin(b)); err != nil {
			probs = append(probs, Problem{What: fmt.Sprintf("%s not found in %s", b, m.cfg.BinDir), Fix: "make build, or pass --bin-dir"})
		}
	}
	subnet, err := netip.ParsePrefix(m.cfg.Subnet)
	if err != nil || !subnet.Addr().Is4() {
		probs = append(probs, Problem{What: fmt.Sprintf("invalid subnet %q", m.cfg.Subnet), Fix: "pass an IPv4 CIDR, e.g. --subnet " + DefaultSubnet})
	} else if routes, err := env.routes(ctx); err == nil {
		for _, r := range routes {
			if r.Bits() > 0 && r.Overlaps(subnet) {
				probs = append(probs, Problem{What: fmt.Sprintf("subnet %s is in use on this machine (route to %s)", subnet.Masked(), r), Fix: "pick a free one with --subnet, or take the mesh that uses it down (linkerd local down --state-dir DIR)"})
				break
			}
		}
	}
	return probs
}

// hostRoutes returns the destinations of the host's IPv4 routes.
func hostRoutes(ctx context.Context) ([]netip.Prefix, error) {
	out, err := exec.CommandContext(ctx, "ip", "-4", "-o", "route", "show").Output()
	if err != nil {
		return nil, fmt.Errorf("ip route: %w", err)
	}
	var routes []netip.Prefix
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		if slices.Contains([]string{"unicast", "blackhole", "unreachable", "prohibit", "throw"}, dst) && len(f) > 1 {
			dst = f[1]
		}
		if dst == "default" {
			continue
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if p, err := netip.ParsePrefix(dst); err == nil {
			routes = append(routes, p)
		}
	}
	return routes, nil
}

// checkPrerequisites returns a *PrerequisiteError for the required problems
// and logs the optional ones.
func (m *Mesh) checkPrerequisites(ctx context.Context, env prereqEnv) error {
	if m.cfg.InstallMissing {
		if err := m.installMissing(ctx, env); err != nil {
			return err
		}
	}
	var required []Problem
	var notRoot error
	for _, p := range m.prerequisites(ctx, env) {
		if p.Optional {
			m.logf("warning: %s", p)
			continue
		}
		required = append(required, p)
	}
	if err := env.privileges(); err != nil {
		notRoot = err
	}
	if len(required) == 0 {
		return nil
	}
	return &PrerequisiteError{Problems: required, notRoot: notRoot}
}

// aptListsDir holds apt's package lists, empty on a fresh container image.
const aptListsDir = "/var/lib/apt/lists"

// missingPackages returns the Debian packages of the tools of
// prerequisites.txt that are not in PATH, each once, in the list's order.
func missingPackages(lookPath func(string) (string, error)) []string {
	var pkgs []string
	for _, t := range Tools() {
		if _, err := lookPath(t.Command); err != nil && !slices.Contains(pkgs, t.Package) {
			pkgs = append(pkgs, t.Package)
		}
	}
	return pkgs
}

// installMissing installs the packages of missing tools with one apt-get
// install, when it runs as root on a Debian or Ubuntu machine with
// apt-get; otherwise it leaves the problems to the check, which names
// their fix. Package lists are fetched first only when there are none.
func (m *Mesh) installMissing(ctx context.Context, env prereqEnv) error {
	pkgs := missingPackages(env.lookPath)
	if len(pkgs) == 0 || env.privileges() != nil {
		return nil
	}
	if _, err := env.lookPath("apt-get"); err != nil {
		return nil
	}
	if _, err := env.stat("/etc/debian_version"); err != nil {
		return nil
	}
	err := m.aptInstall(ctx, env, pkgs)
	if err == nil {
		return nil
	}
	for _, t := range Tools() {
		if _, lerr := env.lookPath(t.Command); lerr != nil && !t.Optional {
			return err
		}
	}
	// Only optional tools are missing: the mesh runs without them.
	m.logf("warning: %v", err)
	return nil
}

// aptInstall installs pkgs with one apt-get install, fetching the package
// lists first when there are none.
func (m *Mesh) aptInstall(ctx context.Context, env prereqEnv, pkgs []string) error {
	if lists, _ := env.glob(aptListsDir + "/*_Packages*"); len(lists) == 0 {
		// No lists yet (a fresh image): apt-get install would find nothing.
		m.logf("fetching the package lists: apt-get update")
		if err := env.run(ctx, m.cfg.Log, "apt-get", "update", "-q"); err != nil {
			return fmt.Errorf("installing the missing packages: %w; install them yourself: apt-get update && apt-get install -y %s", err, strings.Join(pkgs, " "))
		}
	}
	args := append([]string{"install", "-y", "-q", "--no-install-recommends"}, pkgs...)
	m.logf("installing the missing packages (--install-missing=false to refuse): apt-get %s", strings.Join(args, " "))
	if err := env.run(ctx, m.cfg.Log, "apt-get", args...); err != nil {
		return fmt.Errorf("installing the missing packages: %w; install them yourself: apt-get install -y %s", err, strings.Join(pkgs, " "))
	}
	return nil
}
