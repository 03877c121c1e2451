package testnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// defaultWaitTCP bounds WaitTCP when its context has no deadline.
	defaultWaitTCP = 30 * time.Second
	// execTimeout bounds Pod.Exec.
	execTimeout = 2 * time.Minute
)

// Pod is a network namespace attached to a Network.
type Pod struct {
	// Name is the pod's name within its network.
	Name string
	// NetNS is the name of the pod's namespace (a file in /run/netns).
	NetNS string
	// IP is the pod's address on its network's subnet.
	IP netip.Addr
	// Interface is the pod's interface on the network ("eth0").
	Interface string
	// HostVeth is the peer of Interface, attached to the bridge in the
	// switch namespace.
	HostVeth string

	network *Network
}

// Network returns the network the pod belongs to.
func (p *Pod) Network() *Network { return p.network }

// NetNSPath returns the path of the pod's namespace file.
func (p *Pod) NetNSPath() string { return nsPath(p.NetNS) }

// Addr returns "IP:port" for the pod's address.
func (p *Pod) Addr(port uint16) string {
	return netip.AddrPortFrom(p.IP, port).String()
}

// Credential is a user and group to run a process as. The process gets no
// supplementary groups.
type Credential struct {
	UID, GID uint32
}

// ExecOptions are optional settings of a process run inside a pod.
type ExecOptions struct {
	// User, if set, runs the process as this uid/gid (for example the proxy's
	// uid 2102) instead of root.
	User *Credential
	// Env is appended to the test process's environment.
	Env []string
	// Dir is the working directory; empty means the test's.
	Dir string
}

// Command returns a command that runs name with args inside the pod's
// network namespace, as root. The command is killed when ctx is done.
func (p *Pod) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return p.CommandWith(ctx, ExecOptions{}, name, args...)
}

// CommandWith is like Command with options for the user and environment.
//
// The command runs under nsenter(1), which joins the namespace and then
// executes name in place, so the returned Cmd's process is the program
// itself (through env(1), which first resets every signal to its default
// action: a pod's processes must not inherit the dispositions of whatever
// started the tests, e.g. SIGHUP ignored under nohup or a detached CI
// runner, which a shell's trap then cannot catch). Switching to opts.User happens inside nsenter after it joined the
// namespace (joining needs CAP_SYS_ADMIN); do not set
// SysProcAttr.Credential on the returned Cmd, as that would apply to nsenter.
// The process gets its own process group and is SIGKILLed if the thread that
// started it exits.
func (p *Pod) CommandWith(ctx context.Context, opts ExecOptions, name string, args ...string) *exec.Cmd {
	nsArgs := []string{"--net=" + p.NetNSPath()}
	if opts.User != nil {
		nsArgs = append(nsArgs,
			"--setgid", strconv.FormatUint(uint64(opts.User.GID), 10),
			"--setuid", strconv.FormatUint(uint64(opts.User.UID), 10))
	}
	nsArgs = append(nsArgs, "--", "env", "--default-signal", "--", name)
	nsArgs = append(nsArgs, args...)
	cmd := exec.CommandContext(ctx, "nsenter", nsArgs...)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Dir = opts.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	// Children that inherited stdout must not keep Wait blocked forever.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Exec runs name with args inside the pod as root, waits (bounded) for it to
// finish and returns its combined output. It fails the test if the command
// fails.
func (p *Pod) Exec(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	out, err := p.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("testnet: pod %s: %s %s: %v\n%s", p.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Do runs fn on an OS thread that has joined the pod's network namespace.
// Sockets fn creates on its own goroutine belong to the pod for their whole
// life; goroutines fn starts do not run in the pod. Safe for concurrent use.
func (p *Pod) Do(fn func() error) error {
	return runInNetNS(p.NetNSPath(), fn)
}

// DialContext connects to addr from inside the pod, so that the connection
// traverses the pod's iptables OUTPUT chain like one made by an application
// in the pod. It has the signature of net.Dialer.DialContext, for use as
// http.Transport.DialContext (see DialTCP for gRPC). Host names are
// resolved by the test process (outside the pod) before dialing. Safe for
// concurrent use.
func (p *Pod) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	targets, err := resolveTargets(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("pod %s: dial %s %s: %w", p.Name, network, addr, err)
	}
	// No Happy Eyeballs: racing dials would run on other goroutines, which
	// are not in the pod's namespace. Each target is a literal address, so
	// the dialer creates the socket on the calling (locked) goroutine.
	d := net.Dialer{FallbackDelay: -1}
	var conn net.Conn
	err = p.Do(func() error {
		var errs []error
		for _, target := range targets {
			c, err := d.DialContext(ctx, network, target)
			if err == nil {
				conn = c
				return nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", p.Name, err)
	}
	return conn, nil
}

// DialTCP is DialContext for TCP, with the signature grpc.WithContextDialer
// expects: grpc.WithContextDialer(pod.DialTCP).
func (p *Pod) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	return p.DialContext(ctx, "tcp", addr)
}

// resolveTargets turns addr into literal "ip:port" targets for IP networks;
// other networks (unix) are returned as is.
func resolveTargets(ctx context.Context, network, addr string) ([]string, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return []string{addr}, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host == "" {
		return []string{addr}, nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return []string{addr}, nil
	}
	ipNet := "ip"
	switch network[len(network)-1] {
	case '4':
		ipNet = "ip4"
	case '6':
		ipNet = "ip6"
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, ipNet, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	targets := make([]string, 0, len(ips))
	for _, ip := range ips {
		targets = append(targets, net.JoinHostPort(ip.Unmap().String(), port))
	}
	return targets, nil
}

// Listen creates a stream listener inside the pod (for example
// Listen("tcp", ":8080") or Listen("tcp", pod.Addr(0))). Accepting on it
// works from any goroutine.
func (p *Pod) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := p.Do(func() error {
		var err error
		ln, err = (&net.ListenConfig{}).Listen(context.Background(), network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", p.Name, err)
	}
	return ln, nil
}

// ListenPacket creates a packet listener (for example UDP) inside the pod.
func (p *Pod) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := p.Do(func() error {
		var err error
		pc, err = (&net.ListenConfig{}).ListenPacket(context.Background(), network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", p.Name, err)
	}
	return pc, nil
}

// WaitTCP waits until a TCP connection to addr from inside the pod succeeds,
// for at most 30 seconds when ctx has no earlier deadline.
func (p *Pod) WaitTCP(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, defaultWaitTCP)
	defer cancel()
	var lastErr error
	for {
		attemptCtx, attemptCancel := context.WithTimeout(ctx, time.Second)
		conn, err := p.DialContext(attemptCtx, "tcp", addr)
		attemptCancel()
		if err == nil {
			conn.Close()
			return nil
		}
		lastErr = err
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("pod %s: waiting for %s: %w (last error: %w)", p.Name, addr, ctx.Err(), lastErr)
		case <-t.C:
		}
	}
}
