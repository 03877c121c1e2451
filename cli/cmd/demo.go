package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/cli/localmesh"
)

// newCmdDemo is `linkerd demo`: the local mesh with the demo app, until
// interrupted.
func newCmdDemo(_ Env) *cobra.Command {
	var (
		stateDir, binDir string
		subnet           string
		rate             float64
		duration         time.Duration
		installMissing   bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the mesh and its demo app on this machine until interrupted",
		Long: `demo starts the local mesh (see "linkerd local") and the demo app in namespace
demo, every workload meshed: a web front end calling two gRPC services, and a
bot voting a few times a second. One choice fails on purpose. Interrupt it
(Ctrl-C) to stop and clean up everything. Needs root.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := localmesh.CheckPrivileges(); err != nil {
				return err
			}
			sup, err := supervisorCommand()
			if err != nil {
				return err
			}
			m, err := localmesh.New(localmesh.Config{StateDir: stateDir, BinDir: binDir, Subnet: subnet, Log: c.OutOrStdout(), Supervisor: sup, InstallMissing: installMissing})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			defer func() {
				fmt.Fprintln(c.OutOrStdout(), "stopping the demo and the local mesh")
				if err := m.Down(context.WithoutCancel(ctx)); err != nil {
					fmt.Fprintf(c.ErrOrStderr(), "linkerd demo: clean-up: %v\n", err)
				}
			}()
			if err := m.Up(ctx); err != nil {
				var missing *localmesh.PrerequisiteError
				if errors.As(err, &missing) {
					fmt.Fprintf(c.ErrOrStderr(), "Error: %v\n", missing)
					return &exitError{code: 1}
				}
				return err
			}
			workloads, err := m.RunDemo(ctx, rate)
			if err != nil {
				return err
			}
			printDemoHelp(c.OutOrStdout(), m, workloads)
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", localmesh.DefaultStateDir, "directory holding the local mesh's state, logs and resource store")
	cmd.Flags().StringVar(&binDir, "bin-dir", "", "directory holding the mesh's binaries and linkerd-demo (default: next to this executable)")
	cmd.Flags().StringVar(&subnet, "subnet", localmesh.DefaultSubnet, "subnet of the pods' network")
	cmd.Flags().Float64Var(&rate, "rate", 3, "votes per second the bot sends")
	cmd.Flags().BoolVar(&installMissing, "install-missing", true, installMissingUsage)
	cmd.Flags().DurationVar(&duration, "for", 0, "stop after this long (default: until interrupted)")
	return cmd
}

func printDemoHelp(w io.Writer, m *localmesh.Mesh, workloads []*localmesh.Workload) {
	web, prom := "", ""
	for _, wl := range workloads {
		if wl.Name == "web" {
			web = wl.NetNS
		}
	}
	if st, err := m.Status(context.Background()); err == nil {
		for _, wl := range st {
			if wl.Namespace == localmesh.VizNamespace && wl.Name == "prometheus" {
				prom = wl.NetNS
			}
		}
	}
	fmt.Fprintf(w, `
The demo is running, meshed: bot -> web -> items, voting (mTLS between every pair).
Voting for one choice fails on purpose.

Try, in another terminal:
  sudo linkerd local status --state-dir %[1]s
  sudo linkerd local exec --state-dir %[1]s demo/bot -- curl -s http://web.demo:8080/api/leaderboard
  sudo ip netns exec %[2]s curl -s localhost:4191/metrics | grep '^response_total'
  sudo pkill -f 'linkerd-demo voting'   # it is restarted: see RESTARTS in local status
`, m.StateDir(), web)
	if prom != "" {
		fmt.Fprintf(w, `  sudo ip netns exec %s curl -s 'localhost:%d/api/v1/query?query=sum(rate(response_total[1m]))by(deployment,classification)'
`, prom, localmesh.PrometheusPort)
		sd := ""
		if m.StateDir() != localmesh.DefaultStateDir {
			sd = " --state-dir " + m.StateDir()
		}
		fmt.Fprintf(w, `  linkerd viz stat deploy -n demo%[1]s     # success rate, RPS, latency per deployment
  linkerd viz edges deploy -n demo%[1]s    # who calls whom, mTLS
  linkerd viz routes deploy/web -n demo%[1]s
  linkerd viz top deploy/web -n demo%[1]s
`, sd)
	}
	if addr, err := localmesh.DashboardAddr(m.StateDir()); err == nil {
		fmt.Fprintf(w, "  linkerd viz dashboard --state-dir %s   # the dashboard, also at http://%s\n", m.StateDir(), addr)
	}
	fmt.Fprintln(w, "\nCtrl-C stops everything.")
}
