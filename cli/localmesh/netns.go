package localmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const netnsDir = "/run/netns"

// NetNSPath returns the path of the named network namespace.
func NetNSPath(name string) string { return filepath.Join(netnsDir, name) }

// netnsExists reports whether the named network namespace exists.
func netnsExists(name string) bool {
	_, err := os.Stat(NetNSPath(name))
	return err == nil
}

// ListNetNS returns the names of the network namespaces starting with
// prefix.
func ListNetNS(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network namespaces: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// DialContext connects to addr (a literal "ip:port") from inside the named
// network namespace: the socket is created on a thread that joined it, so
// the connection traverses the namespace's iptables rules.
func DialContext(ctx context.Context, netns, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := inNetNS(NetNSPath(netns), func() error {
		d := net.Dialer{FallbackDelay: -1}
		c, err := d.DialContext(ctx, network, addr)
		conn = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", netns, err)
	}
	return conn, nil
}

// HTTPClient returns a client whose connections are made from inside the
// named network namespace. Host names in URLs must be literal addresses.
func HTTPClient(netns string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return DialContext(ctx, netns, network, addr)
			},
			DisableKeepAlives: true,
		},
	}
}

// get fetches url from inside netns and returns the status and body.
func get(ctx context.Context, netns, url string) (int, string, error) {
	c := HTTPClient(netns, 2*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// inNetNS runs fn on a fresh OS thread that joined the namespace at path.
// The thread is thrown away afterwards (never unlocked), so the namespace
// cannot leak to other goroutines.
func inNetNS(path string, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread exits with this goroutine.
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- fmt.Errorf("open network namespace: %w", err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ch <- fn()
	}()
	return <-ch
}
