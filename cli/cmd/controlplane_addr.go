package cmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/cli/portforward"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// controlPlaneAPI returns the address of one of the destination pod's gRPC
// APIs (port: destination's or the policy controller's) and what to call
// when done with it: addr when the user gave one; else the local mesh's
// (--state-dir given, or no kubeconfig; local finds it in the state); else
// a port-forward to a destination pod of the cluster.
func controlPlaneAPI(cmd *cobra.Command, global *GlobalOptions, addr, stateDir string, port int, local func(stateDir string) (string, error)) (string, func(), error) {
	if addr != "" {
		return addr, func() {}, nil
	}
	if useLocalMesh(cmd, global) {
		a, err := local(stateDir)
		if errors.Is(err, localmesh.ErrNotUp) {
			return "", nil, noLocalMesh(cmd, stateDir)
		}
		if err != nil {
			return "", nil, err
		}
		return a, func() {}, nil
	}
	cfg, err := restConfig(global)
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	sel := labels.Set{k8s.ControllerComponentLabel: k8s.DestinationComponent}.String()
	f, err := portforward.ToComponent(ctx, cfg, global.LinkerdNamespace, sel, 0, port)
	if err != nil {
		return "", nil, fmt.Errorf("reaching %s in %s: %w", k8s.DestinationDeploymentName, global.LinkerdNamespace, err)
	}
	return f.Addr, f.Close, nil
}

// noLocalMesh is the error of a command that targets the local mesh at
// stateDir when none is up there.
func noLocalMesh(cmd *cobra.Command, stateDir string) error {
	if cmd.Flags().Changed(stateDirFlag) {
		return fmt.Errorf("no local mesh is up at %s (run: linkerd local up)", stateDir)
	}
	return fmt.Errorf("no kubeconfig and no local mesh up at %s: start one (linkerd local up, linkerd demo)", stateDir)
}
