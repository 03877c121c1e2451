// Command linkerd-demo runs one part of the demo application (web, items,
// voting or bot). See package demo/cmd.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/linkerd-go/linkerd/demo/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := cmd.Execute(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}
