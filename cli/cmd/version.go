package cmd

import (
	"context"
	"fmt"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/pkg/version"
	"github.com/spf13/cobra"
)

// unavailable is printed when the server version cannot be determined.
const unavailable = "unavailable"

type versionOptions struct {
	clientOnly bool
	short      bool
	stateDir   string
}

func newCmdVersion(global *GlobalOptions, env Env) *cobra.Command {
	opts := &versionOptions{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client and server version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			printVersion := func(label, v string) {
				if opts.short {
					fmt.Fprintln(out, v)
				} else {
					fmt.Fprintf(out, "%s version: %s\n", label, v)
				}
			}
			printVersion("Client", version.Version)
			if opts.clientOnly {
				return nil
			}
			server := unavailable
			serverVersion := env.ServerVersion
			if useLocalMesh(cmd, global) {
				serverVersion = func(context.Context, *GlobalOptions) (string, error) { return localmesh.ServerVersion(opts.stateDir) }
			}
			if serverVersion != nil {
				if v, err := serverVersion(cmd.Context(), global); err == nil && v != "" {
					server = v
				}
			}
			printVersion("Server", server)
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.clientOnly, "client", false, "print the client version only")
	cmd.Flags().BoolVar(&opts.short, "short", false, "print the version numbers only, without labels")
	addStateDirFlag(cmd.Flags(), &opts.stateDir)
	return cmd
}
