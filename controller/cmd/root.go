// Package cmd implements linkerd-controller, the control plane's binary:
// one subcommand per component (identity, ...), one file per subcommand.
//
// To add a component, add a file that registers its command from init:
//
//	func init() { register(newDestinationCommand) }
//
// Subcommands take Go-style flags (-flag=value, single or double dash), as
// Linkerd's manifests pass them; flagCommand builds such a command.
package cmd

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/pkg/version"
)

// Env carries the command's outside world.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
}

// subcommands holds the constructors registered by each subcommand's file.
var subcommands []func(Env) *cobra.Command

// register adds a subcommand constructor; call it from init.
func register(newCmd func(Env) *cobra.Command) {
	subcommands = append(subcommands, newCmd)
}

// NewRootCommand builds the linkerd-controller command tree.
func NewRootCommand(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:                "linkerd-controller",
		Short:              "linkerd-controller runs a Linkerd control-plane component",
		Version:            version.Version,
		SilenceErrors:      true,
		SilenceUsage:       true,
		DisableSuggestions: true,
		CompletionOptions:  cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	cmds := make([]*cobra.Command, 0, len(subcommands))
	for _, newCmd := range subcommands {
		cmds = append(cmds, newCmd(env))
	}
	slices.SortFunc(cmds, func(a, b *cobra.Command) int { return strings.Compare(a.Name(), b.Name()) })
	root.AddCommand(cmds...)
	return root
}

// Execute runs the command with args (without the program name) until it
// finishes or ctx is cancelled, and returns the process exit code: 0 on
// success, 2 for usage errors, 1 for any other error, which is printed to
// env.Stderr.
func Execute(ctx context.Context, args []string, env Env) int {
	root := NewRootCommand(env)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(env.Stderr, "linkerd-controller: %v\n", err)
		if isUsageError(err) {
			return 2
		}
		return 1
	}
	return 0
}
