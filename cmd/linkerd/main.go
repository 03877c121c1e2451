// Command linkerd is the Linkerd command-line interface. See package cli/cmd.
package main

import (
	"context"
	"os"

	"github.com/linkerd-go/linkerd/cli/cmd"
)

func main() {
	os.Exit(cmd.Execute(context.Background(), os.Args[1:], cmd.Env{Stdout: os.Stdout, Stderr: os.Stderr, ServerVersion: cmd.ClusterServerVersion}))
}
