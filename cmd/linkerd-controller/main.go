// Command linkerd-controller runs one Linkerd control-plane component, named
// by its first argument (e.g. `linkerd-controller identity -addr=:8080`).
// See package controller/cmd.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/linkerd-go/linkerd/controller/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := cmd.Execute(ctx, os.Args[1:], cmd.Env{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
