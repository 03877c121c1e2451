// Command linkerd-await waits for the Linkerd proxy to be ready, then runs
// a command. See package await.
package main

import (
	"context"
	"os"

	"github.com/linkerd-go/linkerd/await"
)

func main() {
	os.Exit(await.Main(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}
