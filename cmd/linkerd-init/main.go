// Command linkerd-init configures a pod's iptables rules so that its TCP
// traffic goes through the Linkerd proxy. See package proxyinit.
package main

import (
	"context"
	"os"

	"github.com/linkerd-go/linkerd/proxyinit"
)

func main() {
	os.Exit(proxyinit.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
