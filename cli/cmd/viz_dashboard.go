package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/cli/localmesh"
)

// DefaultDashboardPort is the local port `linkerd viz dashboard` serves
// on, as Linkerd's.
const DefaultDashboardPort = 50750

type dashboardOptions struct {
	address string
	port    int
	show    string
	wait    time.Duration
}

// Values of --show.
const (
	showLinkerd = "linkerd"
	showGrafana = "grafana"
	showURL     = "url"
)

func newCmdVizDashboard(global *GlobalOptions, vopts *vizOptions) *cobra.Command {
	opts := &dashboardOptions{}
	cmd := &cobra.Command{
		Use:   "dashboard [flags]",
		Short: "Open the Linkerd dashboard in a web browser",
		Long: `Open the Linkerd dashboard in a web browser.

It forwards a local port (--port, on --address) to the viz web server: on the
local mesh to its web pod, in Kubernetes to a web pod of linkerd-viz (a
port-forward), until interrupted. --show url only prints the URLs.`,
		Example: `  linkerd viz dashboard
  linkerd viz dashboard --port 8080 --show url`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch opts.show {
			case showLinkerd, showGrafana, showURL:
			default:
				return fmt.Errorf("--show must be one of %s, %s or %s, not %q", showLinkerd, showGrafana, showURL, opts.show)
			}
			if opts.port < 0 || opts.port > 65535 {
				return fmt.Errorf("--port %d: want 0-65535", opts.port)
			}
			return runDashboard(cmd.Context(), cmd, global, vopts, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.address, "address", "localhost", "the address at which to serve requests")
	flags.IntVarP(&opts.port, "port", "p", DefaultDashboardPort, "the local port on which to serve requests (when set to 0, a random port will be used)")
	flags.StringVar(&opts.show, "show", showLinkerd, `open a dashboard in a browser or show URLs in the CLI (one of: linkerd, grafana, url)`)
	flags.DurationVar(&opts.wait, "wait", 300*time.Second, "wait for the dashboard to become available if it's not available")
	return cmd
}

// dashboardBackend dials the viz web server.
type dashboardBackend struct {
	what string // for messages: "the local mesh's web pod 10.x.y.z:8084"
	dial func(ctx context.Context) (net.Conn, error)
	// close releases what dialing needs (a port-forward).
	close func()
}

func runDashboard(ctx context.Context, cmd *cobra.Command, global *GlobalOptions, vopts *vizOptions, opts *dashboardOptions) error {
	lis, err := listenDashboard(opts.address, opts.port)
	if err != nil {
		return err
	}
	defer lis.Close()
	backend, err := dashboardTarget(ctx, cmd, global, vopts)
	if err != nil {
		return err
	}
	defer backend.close()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { forward(ctx, lis, backend.dial) })
	// On return: stop forwarding (which closes lis), wait for it.
	defer wg.Wait()
	defer cancel()

	url := "http://" + net.JoinHostPort(opts.address, strconv.Itoa(lis.Addr().(*net.TCPAddr).Port))
	grafana, err := waitDashboard(ctx, url, opts.wait)
	if err != nil {
		return fmt.Errorf("the dashboard (%s) does not answer: %w", backend.what, err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Linkerd dashboard available at:\n%s\n", url)
	if grafana != "" {
		grafana += "/d/linkerd-top-line/linkerd-top-line"
		fmt.Fprintf(out, "Grafana dashboard available at:\n%s\n", grafana)
	}
	switch opts.show {
	case showLinkerd:
		fmt.Fprintln(out, "Opening Linkerd dashboard in the default browser")
		openBrowser(out, url)
	case showGrafana:
		if grafana == "" {
			return errors.New("no Grafana is configured for this dashboard (install viz with --set grafana.url=...)")
		}
		fmt.Fprintln(out, "Opening Grafana dashboard in the default browser")
		openBrowser(out, grafana)
	}
	<-ctx.Done()
	return nil
}

// listenDashboard binds the local port, with a clear error when it is taken.
func listenDashboard(address string, port int) (net.Listener, error) {
	lis, err := net.Listen("tcp", net.JoinHostPort(address, strconv.Itoa(port)))
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("port %d on %s is already in use (is a dashboard already running?): choose another with --port", port, address)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", net.JoinHostPort(address, strconv.Itoa(port)), err)
	}
	return lis, nil
}

// dashboardTarget finds the web server: the local mesh's web pod (with
// --state-dir, or with no kubeconfig and a mesh up), else Kubernetes.
func dashboardTarget(ctx context.Context, cmd *cobra.Command, global *GlobalOptions, vopts *vizOptions) (*dashboardBackend, error) {
	explicit := cmd.Flags().Changed(stateDirFlag)
	if explicit || !hasKubeconfig(global) {
		addr, err := localmesh.DashboardAddr(vopts.stateDir)
		if errors.Is(err, localmesh.ErrNotUp) {
			if explicit {
				return nil, fmt.Errorf("no local mesh is up at %s (run: linkerd local up)", vopts.stateDir)
			}
			return nil, fmt.Errorf("no kubeconfig and no local mesh up at %s: start one (linkerd local up, linkerd demo)", vopts.stateDir)
		}
		if err != nil {
			return nil, err
		}
		var d net.Dialer
		return &dashboardBackend{
			what:  "the local mesh's web pod at " + addr,
			dial:  func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
			close: func() {},
		}, nil
	}
	return kubeDashboard(ctx, global, vopts)
}

// forward accepts connections on lis until ctx ends, and copies each to a
// connection dial opens; it returns once every copy has ended.
func forward(ctx context.Context, lis net.Listener, dial func(context.Context) (net.Conn, error)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { lis.Close() })
	defer stop()
	for {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer c.Close()
			b, err := dial(ctx)
			if err != nil {
				return
			}
			defer b.Close()
			done := context.AfterFunc(ctx, func() { c.Close(); b.Close() })
			defer done()
			var cw sync.WaitGroup
			cw.Go(func() {
				_, _ = io.Copy(b, c)
				if tc, ok := b.(interface{ CloseWrite() error }); ok {
					_ = tc.CloseWrite()
				}
			})
			_, _ = io.Copy(c, b)
			if tc, ok := c.(interface{ CloseWrite() error }); ok {
				_ = tc.CloseWrite()
			}
			cw.Wait()
		})
	}
}

// waitDashboard polls the dashboard's /api/config through the forward for
// up to wait, and returns the Grafana URL it is configured with.
func waitDashboard(ctx context.Context, url string, wait time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c := &http.Client{Timeout: 5 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/config", nil)
		if err != nil {
			return "", err
		}
		resp, err := c.Do(req)
		if err == nil {
			var cfg struct {
				GrafanaURL string `json:"grafanaUrl"`
			}
			err = json.NewDecoder(resp.Body).Decode(&cfg)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				return cfg.GrafanaURL, nil
			}
			if err == nil {
				err = fmt.Errorf("GET /api/config: %s", resp.Status)
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (waited %v)", last, wait)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// openBrowser opens url with the desktop's opener, or says to.
func openBrowser(out io.Writer, url string) {
	for _, opener := range []string{"xdg-open", "open"} {
		if p, err := exec.LookPath(opener); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := exec.CommandContext(ctx, p, url).Run()
			cancel()
			if err == nil {
				return
			}
		}
	}
	fmt.Fprintf(out, "Failed to open Linkerd dashboard automatically\nVisit %s in your browser to view the dashboard\n", url)
}
