// Package cmd implements the linkerd command-line interface: one file per
// command, wired together by NewRootCmd.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// DefaultLinkerdNamespace is where the control plane is installed by default.
const DefaultLinkerdNamespace = "linkerd"

// GlobalOptions are the persistent flags every command sees.
type GlobalOptions struct {
	// LinkerdNamespace is the control plane's namespace (--linkerd-namespace, -L).
	LinkerdNamespace string
	// Kubeconfig is the kubeconfig file to use (--kubeconfig); empty means the default lookup.
	Kubeconfig string
	// KubeContext is the kubeconfig context to use (--context); empty means the current one.
	KubeContext string
}

// ServerVersionFunc returns the version of the control plane reachable with
// opts. An error makes the CLI report the server version as unavailable.
type ServerVersionFunc func(ctx context.Context, opts *GlobalOptions) (string, error)

// Env carries the CLI's outside world, so tests and later features can
// replace parts of it.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	// Stdin is read by commands given "-" as a file; nil means os.Stdin.
	Stdin io.Reader
	// ServerVersion looks up the control plane version; nil means there is
	// no cluster support yet and the version is always unavailable.
	ServerVersion ServerVersionFunc
}

// NewRootCmd builds the linkerd command tree.
func NewRootCmd(env Env) *cobra.Command {
	opts := &GlobalOptions{}
	root := &cobra.Command{
		Use:   "linkerd",
		Short: "linkerd manages the Linkerd service mesh",
		Long:  "linkerd installs, inspects and operates the Linkerd service mesh on Kubernetes.",
		// Errors are printed once, on one line, by Execute.
		SilenceErrors:      true,
		SilenceUsage:       true,
		DisableSuggestions: true,
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	if env.Stdin != nil {
		root.SetIn(env.Stdin)
	}

	flags := root.PersistentFlags()
	flags.StringVarP(&opts.LinkerdNamespace, "linkerd-namespace", "L", DefaultLinkerdNamespace, "namespace in which Linkerd is installed")
	flags.StringVar(&opts.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file to use for CLI requests")
	flags.StringVar(&opts.KubeContext, "context", "", "name of the kubeconfig context to use")

	root.AddCommand(newCmdVersion(opts, env))
	root.AddCommand(newCmdAuthz(opts))
	root.AddCommand(newCmdCheck(opts, env))
	root.AddCommand(newCmdDiagnostics(opts, env))
	root.AddCommand(newCmdLocal(env))
	root.AddCommand(newCmdDemo(env))
	root.AddCommand(newCmdInject(opts, env))
	root.AddCommand(newCmdUninject(env))
	root.AddCommand(newCmdInstall(opts, env))
	root.AddCommand(newCmdUpgrade(opts, env))
	root.AddCommand(newCmdUninstall(opts, env))
	root.AddCommand(newCmdViz(opts, env))
	root.AddCommand(newCmdProfile(opts, env))
	root.AddCommand(newCmdIdentity(opts, env))
	return root
}

// Execute runs the CLI with args (without the program name) and returns the
// process exit code: 0 on success, 1 on any error, which is printed to
// env.Stderr as a single line (unless the command already reported it and
// returned an *exitError with its code).
func Execute(ctx context.Context, args []string, env Env) int {
	root := NewRootCmd(env)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var silent *exitError
		if errors.As(err, &silent) {
			return silent.code
		}
		fmt.Fprintf(env.Stderr, "Error: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

// exitError makes Execute return code without printing anything: the
// command has already reported why it failed (e.g. check's status line).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// oneLine joins a possibly multi-line message into one line.
func oneLine(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " ")
}
