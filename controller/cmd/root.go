// Package cmd implements linkerd-controller, the control plane's binary:
// one subcommand per component (identity, ...), one file per subcommand.
//
// To add a component, add a file with its command's constructor and list
// it in subcommands.
//
// Subcommands take Go-style flags (-flag=value, single or double dash), as
// Linkerd's manifests pass them; flagCommand builds such a command.
package cmd

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/linkerd-go/linkerd/pkg/version"
)

// Env carries the command's outside world.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
}

// subcommands are linkerd-controller's commands, one file each, in the
// order help lists them.
func subcommands() []func(Env) *cobra.Command {
	return []func(Env) *cobra.Command{
		newDestinationCommand,
		newIdentityCommand,
		newMetricsAPICommand,
		newPolicyCommand,
		newPolicyValidatorCommand,
		newProxyInjectorCommand,
		newSPValidatorCommand,
		newTapCommand,
		newTapInjectorCommand,
		newWebCommand,
	}
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
	for _, newCmd := range subcommands() {
		root.AddCommand(newCmd(env))
	}
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
