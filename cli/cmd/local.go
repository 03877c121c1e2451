package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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
	Delete(ctx context.Context, namespace, name string) error
	ExecCommand(namespace, name string, args []string) ([]string, error)
}

func newLocalMesh(cfg localmesh.Config) (localMesh, error) { return localmesh.New(cfg) }

func newCmdLocal(env Env) *cobra.Command {
	return newCmdLocalWith(env, newLocalMesh, localmesh.CheckPrivileges)
}

// localCtx is what every local subcommand shares: the flags of `linkerd
// local` and how to build the mesh.
type localCtx struct {
	opts            localOptions
	newMesh         localMeshFunc
	checkPrivileges func() error
}

// mesh builds the mesh for c after the privilege check.
func (l *localCtx) mesh(c *cobra.Command, subnet string) (localMesh, error) {
	if err := l.checkPrivileges(); err != nil {
		return nil, err
	}
	return l.meshAnyUser(c, subnet, false)
}

// meshAnyUser builds the mesh without the privilege check, for up, which
// reports privileges among all its prerequisites.
func (l *localCtx) meshAnyUser(c *cobra.Command, subnet string, installMissing bool) (localMesh, error) {
	sup, err := supervisorCommand()
	if err != nil {
		return nil, err
	}
	return l.newMesh(localmesh.Config{StateDir: l.opts.stateDir, BinDir: l.opts.binDir, Subnet: subnet, Log: c.OutOrStdout(), Supervisor: sup, InstallMissing: installMissing})
}

// newCmdLocalWith builds the local command tree over newMesh, after the
// privilege check.
func newCmdLocalWith(_ Env, newMesh localMeshFunc, checkPrivileges func() error) *cobra.Command {
	l := &localCtx{newMesh: newMesh, checkPrivileges: checkPrivileges}
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
it listens again; so is a dead proxy. Needs root.`,
	}
	cmd.PersistentFlags().StringVar(&l.opts.stateDir, "state-dir", localmesh.DefaultStateDir, "directory holding the local mesh's state, logs and resource store")
	cmd.PersistentFlags().StringVar(&l.opts.binDir, "bin-dir", "", "directory holding linkerd-proxy, linkerd-init and linkerd-controller (default: next to this executable)")
	cmd.AddCommand(newCmdLocalUp(l), newCmdLocalRun(l), newCmdLocalExec(l), newCmdLocalDelete(l),
		newCmdLocalApply(l), newCmdLocalStatus(l), newCmdLocalDown(l), newCmdLocalSupervise(l))
	return cmd
}

func newCmdLocalUp(l *localCtx) *cobra.Command {
	var subnet string
	var installMissing bool
	up := &cobra.Command{
		Use:   "up",
		Short: "Start the local network and control plane (identity and destination)",
		Long: `up creates the local network and starts the control plane. It first checks
what it needs (root, network namespaces, iproute2, util-linux, the
mesh's binaries, a free subnet) and lists every missing prerequisite with its
fix before creating anything; a failure half-way removes what it created.
Run as root on Debian or Ubuntu, it first installs the missing tools'
packages with one apt-get install (--install-missing=false refuses).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			m, err := l.meshAnyUser(c, subnet, installMissing)
			if err != nil {
				return err
			}
			err = m.Up(c.Context())
			var missing *localmesh.PrerequisiteError
			if errors.As(err, &missing) {
				// One line per missing prerequisite, each with its fix.
				fmt.Fprintf(c.ErrOrStderr(), "Error: %v\n", missing)
				return &exitError{code: 1}
			}
			return err
		},
	}
	up.Flags().StringVar(&subnet, "subnet", localmesh.DefaultSubnet, "subnet of the pods' network")
	up.Flags().BoolVar(&installMissing, "install-missing", true, installMissingUsage)
	return up
}

const installMissingUsage = "as root with apt-get, install the missing tools' packages (prerequisites) first"

func newCmdLocalRun(l *localCtx) *cobra.Command {
	var spec localmesh.RunSpec
	var labels []string
	runCmd := &cobra.Command{
		Use:   "run --name NAME --namespace NS [--port PORT]... [--env K=V]... [--label K=V]... -- CMD [ARGS...]",
		Short: "Start a meshed workload running CMD",
		Long: `run starts a meshed workload: a pod with its proxy, running CMD. CMD gets PATH
and the --env variables, not the CLI's environment. The pod is labelled
app=<service> and with --label.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if spec.Name == "" {
				return fmt.Errorf("--name is required")
			}
			spec.Labels = nil
			for _, kv := range labels {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("invalid --label %q: want KEY=VALUE", kv)
				}
				if spec.Labels == nil {
					spec.Labels = map[string]string{}
				}
				spec.Labels[k] = v
			}
			m, err := l.mesh(c, "")
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
	runCmd.Flags().IntSliceVar(&spec.Ports, "port", nil, "the application's port, exposed by a Service (repeatable: several ports; none: no Service)")
	runCmd.Flags().StringVar(&spec.ServiceAccount, "service-account", "", "ServiceAccount naming the workload's identity (default: --name)")
	runCmd.Flags().StringVar(&spec.Service, "service", "", "Service the workload backs (default: --name)")
	runCmd.Flags().StringArrayVar(&spec.Env, "env", nil, "environment variable of the application, NAME=VALUE (repeatable)")
	runCmd.Flags().StringArrayVarP(&labels, "label", "l", nil, "label of the pod, KEY=VALUE (repeatable; app defaults to the Service's name)")
	return runCmd
}

// parseWorkloadRef splits NAMESPACE/NAME.
func parseWorkloadRef(ref string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("want NAMESPACE/NAME, not %q", ref)
	}
	return ns, name, nil
}

func newCmdLocalExec(l *localCtx) *cobra.Command {
	return &cobra.Command{
		Use:   "exec NAMESPACE/NAME -- CMD [ARGS...]",
		Short: "Run a command inside a workload's pod (its network and mounts, so Service names resolve)",
		Long: `exec runs CMD inside a workload's pod, as kubectl exec runs it in a container:
in the network namespace and the mounts of its application, so that Service
names resolve through the pod's hosts file and connections go through its
proxy. Its exit status is the command's.`,
		Example: `  linkerd local exec demo/web -- curl -s http://voting.demo:8080/`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			ns, name, err := parseWorkloadRef(args[0])
			if err != nil {
				return err
			}
			m, err := l.mesh(c, "")
			if err != nil {
				return err
			}
			argv, err := m.ExecCommand(ns, name, args[1:])
			if err != nil {
				return err
			}
			cmd := exec.CommandContext(c.Context(), argv[0], argv[1:]...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = c.InOrStdin(), c.OutOrStdout(), c.ErrOrStderr()
			if err := cmd.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) && ee.ExitCode() > 0 {
					return &exitError{code: ee.ExitCode()}
				}
				return fmt.Errorf("exec in %s/%s: %w", ns, name, err)
			}
			return nil
		},
	}
}

func newCmdLocalDelete(l *localCtx) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAMESPACE/NAME",
		Short: "Remove a workload started by run (its pod, proxy and endpoint)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ns, name, err := parseWorkloadRef(args[0])
			if err != nil {
				return err
			}
			m, err := l.mesh(c, "")
			if err != nil {
				return err
			}
			return m.Delete(c.Context(), ns, name)
		},
	}
}

func newCmdLocalApply(l *localCtx) *cobra.Command {
	var file string
	apply := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Add a Kubernetes manifest to the local store",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("-f is required")
			}
			m, err := l.mesh(c, "")
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
	return apply
}

func newCmdLocalStatus(l *localCtx) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "List the workloads: network namespaces, processes, readiness and identities",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			m, err := l.mesh(c, "")
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
}

func newCmdLocalDown(l *localCtx) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop every process of the local mesh and remove its namespaces and state",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			m, err := l.mesh(c, "")
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
}

func newCmdLocalSupervise(l *localCtx) *cobra.Command {
	var pod string
	supervise := &cobra.Command{
		Use:    "supervise --pod NAMESPACE/NAME",
		Short:  "Run and restart a workload's application (started by linkerd local run)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ns, name, err := parseWorkloadRef(pod)
			if err != nil {
				return fmt.Errorf("--pod: %w", err)
			}
			m, err := l.mesh(c, "")
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return m.Supervise(ctx, ns, name)
		},
	}
	supervise.Flags().StringVar(&pod, "pod", "", "the workload, as NAMESPACE/NAME")
	return supervise
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
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tPOD IP\tNETNS\tSERVICE\tPROXY\tAPP\tRESTARTS\tPROCESSES\tIDENTITY")
	for _, s := range sts {
		proxy := "not ready"
		if s.ProxyReady {
			proxy = "ready"
		}
		svc := "-"
		if s.Service != "" {
			ports := make([]string, 0, len(s.AppPorts()))
			for _, p := range s.AppPorts() {
				ports = append(ports, strconv.Itoa(p))
			}
			svc = fmt.Sprintf("%s (%s:%s)", s.Service, s.ClusterIP, strings.Join(ports, ","))
		}
		var running []string
		for _, role := range s.Running {
			if pid, ok := s.PIDs[role]; ok {
				role += ":" + strconv.Itoa(pid)
			}
			running = append(running, role)
		}
		procs := strings.Join(running, ",")
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
		netns := s.NetNS
		if netns == "" {
			netns = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Namespace, s.Name, s.IP, netns, svc, proxy, app, restarts, procs, s.Identity)
	}
	tw.Flush()
}
