package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/cli/localmesh"
)

// localOptions are the flags shared by the local subcommands.
type localOptions struct {
	stateDir string
	binDir   string
}

// localMeshFunc builds the local mesh a command operates on; tests replace it.
type localMeshFunc func(cfg localmesh.Config) (localMesh, error)

// localMesh is what the local commands need of *localmesh.Mesh.
type localMesh interface {
	Up(ctx context.Context) error
	Run(ctx context.Context, spec localmesh.RunSpec) (*localmesh.Workload, error)
	Apply(ctx context.Context, name string, r io.Reader) (string, error)
	Status(ctx context.Context) ([]localmesh.WorkloadStatus, error)
	Down(ctx context.Context) error
	Supervise(ctx context.Context, namespace, name string) error
}

func newLocalMesh(cfg localmesh.Config) (localMesh, error) { return localmesh.New(cfg) }

func newCmdLocal(env Env) *cobra.Command {
	return newCmdLocalWith(env, newLocalMesh, localmesh.CheckPrivileges)
}

// newCmdLocalWith builds the local command tree over newMesh, after the
// privilege check.
func newCmdLocalWith(_ Env, newMesh localMeshFunc, checkPrivileges func() error) *cobra.Command {
	opts := &localOptions{}
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run the mesh on this machine, without Kubernetes",
		Long: `local runs Linkerd's control plane and meshed workloads on this machine: each
workload is a network namespace ("pod") on a local bridge with linkerd-init's
iptables rules, a linkerd-proxy with an identity, and the application. The
destination service reads a directory of Kubernetes YAML (the local store),
to which "apply" adds manifests. Workloads reach Services by name
(web.demo.svc.cluster.local, web.demo, or web in the same namespace). An
application that exits is restarted, its endpoint out of its Service until
it listens again. Needs root.`,
	}
	cmd.PersistentFlags().StringVar(&opts.stateDir, "state-dir", localmesh.DefaultStateDir, "directory holding the local mesh's state, logs and resource store")
	cmd.PersistentFlags().StringVar(&opts.binDir, "bin-dir", "", "directory holding linkerd-proxy, linkerd-init and linkerd-controller (default: next to this executable)")

	// mesh builds the mesh for c after the privilege check; up checks
	// privileges itself, among all its prerequisites (anyRoot).
	mesh := func(c *cobra.Command, subnet string, anyUser ...bool) (localMesh, error) {
		if len(anyUser) == 0 {
			if err := checkPrivileges(); err != nil {
				return nil, err
			}
		}
		sup, err := supervisorCommand()
		if err != nil {
			return nil, err
		}
		return newMesh(localmesh.Config{StateDir: opts.stateDir, BinDir: opts.binDir, Subnet: subnet, Log: c.OutOrStdout(), Supervisor: sup})
	}

	var subnet string
	up := &cobra.Command{
		Use:   "up",
		Short: "Start the local network and control plane (identity and destination)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			m, err := mesh(c, subnet, true)
			if err != nil {
				return err
			}
			return m.Up(c.Context())
		},
	}
	up.Flags().StringVar(&subnet, "subnet", localmesh.DefaultSubnet, "subnet of the pods' network")

	var spec localmesh.RunSpec
	runCmd := &cobra.Command{
		Use:   "run --name NAME --namespace NS [--port PORT] -- CMD [ARGS...]",
		Short: "Start a meshed workload running CMD",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if spec.Name == "" {
				return fmt.Errorf("--name is required")
			}
			m, err := mesh(c, "")
			if err != nil {
				return err
			}
			spec.Command = args
			_, err = m.Run(c.Context(), spec)
			return err
		},
	}
	runCmd.Flags().StringVar(&spec.Name, "name", "", "name of the workload's pod")
	runCmd.Flags().StringVarP(&spec.Namespace, "namespace", "n", "default", "namespace of the workload")
	runCmd.Flags().IntVar(&spec.Port, "port", 0, "the application's port, exposed by a Service (0: no Service)")
	runCmd.Flags().StringVar(&spec.ServiceAccount, "service-account", "", "ServiceAccount naming the workload's identity (default: --name)")
	runCmd.Flags().StringVar(&spec.Service, "service", "", "Service the workload backs (default: --name)")

	var file string
	apply := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Add a Kubernetes manifest to the local store",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("-f is required")
			}
			m, err := mesh(c, "")
			if err != nil {
				return err
			}
			var r io.Reader = c.InOrStdin()
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return fmt.Errorf("open manifest: %w", err)
				}
				defer f.Close()
				r = f
			}
			dst, err := m.Apply(c.Context(), file, r)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "applied %s (%s)\n", file, dst)
			return nil
		},
	}
	apply.Flags().StringVarP(&file, "filename", "f", "", "manifest to apply (- for standard input)")

	status := &cobra.Command{
		Use:   "status",
		Short: "List the workloads, their proxies' readiness and identities",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			m, err := mesh(c, "")
			if err != nil {
				return err
			}
			sts, err := m.Status(c.Context())
			if err != nil {
				return err
			}
			printLocalStatus(c.OutOrStdout(), sts)
			return nil
		},
	}

	down := &cobra.Command{
		Use:   "down",
		Short: "Stop every process of the local mesh and remove its namespaces and state",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			m, err := mesh(c, "")
			if err != nil {
				return err
			}
			if err := m.Down(c.Context()); err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), "the local mesh is down")
			return nil
		},
	}
	var pod string
	supervise := &cobra.Command{
		Use:    "supervise --pod NAMESPACE/NAME",
		Short:  "Run and restart a workload's application (started by linkerd local run)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ns, name, ok := strings.Cut(pod, "/")
			if !ok || ns == "" || name == "" {
				return fmt.Errorf("--pod must be NAMESPACE/NAME, not %q", pod)
			}
			m, err := mesh(c, "")
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return m.Supervise(ctx, ns, name)
		},
	}
	supervise.Flags().StringVar(&pod, "pod", "", "the workload, as NAMESPACE/NAME")

	cmd.AddCommand(up, runCmd, apply, status, down, supervise)
	return cmd
}

// supervisorCommand is how the local mesh runs `linkerd local supervise`:
// this executable.
func supervisorCommand() ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locate the linkerd executable: %w", err)
	}
	return []string{exe, "local", "supervise"}, nil
}

// printLocalStatus writes the workloads as a table.
func printLocalStatus(w io.Writer, sts []localmesh.WorkloadStatus) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tPOD IP\tSERVICE\tPROXY\tAPP\tRESTARTS\tPROCESSES\tIDENTITY")
	for _, s := range sts {
		proxy := "not ready"
		if s.ProxyReady {
			proxy = "ready"
		}
		svc := "-"
		if s.Service != "" {
			svc = fmt.Sprintf("%s (%s:%d)", s.Service, s.ClusterIP, s.Port)
		}
		procs := strings.Join(s.Running, ",")
		if len(s.Dead) > 0 {
			if procs != "" {
				procs += " "
			}
			procs += "dead:" + strings.Join(s.Dead, ",")
		}
		app, restarts := "-", "-"
		if s.Workload.App != nil {
			app, restarts = "not ready", strconv.Itoa(s.App.Restarts)
			if s.App.Ready {
				app = "ready"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Namespace, s.Name, s.IP, svc, proxy, app, restarts, procs, s.Identity)
	}
	tw.Flush()
}
