package cmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/linkerd-go/linkerd/pkg/profiles"
	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
	"github.com/linkerd-go/linkerd/viz/tap"
)

type vizProfileOptions struct {
	namespace     string
	tap           string
	tapDuration   time.Duration
	tapRouteLimit int
	ignoreCluster bool
	output        string
}

// newCmdVizProfile is `linkerd viz profile --tap`: a ServiceProfile with a
// route per method and path a resource's pods were seen serving.
func newCmdVizProfile(global *GlobalOptions, viz *vizOptions) *cobra.Command {
	o := &vizProfileOptions{}
	cmd := &cobra.Command{
		Use:   "profile [flags] --tap RESOURCE (SERVICE)",
		Short: "Output service profile config for Kubernetes based off tap data",
		Long: `Output a ServiceProfile for SERVICE with a route per method and path that
the pods of RESOURCE (--tap) serve, as tap sees them during --tap-duration.
Each route matches its path exactly: edit the profile to merge paths that
differ only by an id into one pathRegex.

RESOURCE is a workload (deploy/NAME, po/NAME; in a cluster also sts, ds,
job) in the service's namespace (-n). In a
cluster the requests come from viz's tap service; on the local mesh from the
pods' proxies.`,
		Example: `  linkerd viz profile -n demo web --tap deploy/web --tap-duration 10s
  linkerd viz profile -n demo web --tap deploy/web | linkerd local apply -f -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.tap == "" {
				return errors.New("give the resource to tap: --tap deploy/NAME")
			}
			if err := checkOutput(o.output, "yaml", "json"); err != nil {
				return err
			}
			if errs := validation.IsDNS1123Label(args[0]); len(errs) > 0 {
				return fmt.Errorf("invalid service name %q: not a DNS label (lowercase letters, digits and '-')", args[0])
			}
			if o.tapDuration <= 0 {
				return fmt.Errorf("--tap-duration must be positive, not %s", o.tapDuration)
			}
			if o.tapRouteLimit <= 0 {
				return fmt.Errorf("--tap-route-limit must be positive, not %d", o.tapRouteLimit)
			}
			r, err := client.ParseResource(o.namespace, o.tap)
			if err != nil {
				return fmt.Errorf("--tap: %w", err)
			}
			if r.Kind == client.KindNamespace || !slices.Contains(tap.TappableKinds, r.Kind) {
				return fmt.Errorf("--tap: cannot build a profile from %s: give a workload (deploy/NAME, po/NAME, ...)", r.Kind)
			}
			if useLocalMesh(cmd, global) && r.Kind != client.KindDeployment && r.Kind != client.KindPod {
				return fmt.Errorf("--tap: cannot tap %s on the local mesh: give a deployment or a pod", r.Kind)
			}
			svc := profiles.Service{Name: args[0], Namespace: o.namespace}
			if svc.ClusterDomain, err = profileClusterDomain(cmd.Context(), global, o.ignoreCluster || cmd.Flags().Changed(stateDirFlag)); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.tapDuration)
			defer cancel()
			events, errs, stop, err := vizTapEvents(ctx, cmd, global, viz, r, &tapv1.Match{Direction: "inbound"}, vizProfileMaxRPS)
			if err != nil {
				return err
			}
			defer stop()
			seen := observeRoutes(events)
			for e := range errs {
				if err == nil {
					err = e
				}
			}
			if err != nil && seen.Len() == 0 {
				return err
			}
			p, err := seen.Profile(svc, o.tapRouteLimit)
			if err != nil {
				return fmt.Errorf("%w: no request reached %s in %s", err, o.tap, o.tapDuration)
			}
			return profiles.Render(cmd.OutOrStdout(), p, o.output)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace of the service and of the tapped resource")
	f.StringVar(&o.tap, "tap", "", "output a service profile based on tap data for the given target resource")
	f.DurationVar(&o.tapDuration, "tap-duration", 5*time.Second, "duration over which tap data is collected (for example: \"10s\", \"1m\")")
	f.IntVar(&o.tapRouteLimit, "tap-route-limit", 20, "max number of routes to add to the profile (the most requested)")
	f.BoolVar(&o.ignoreCluster, "ignore-cluster", false, "name the profile in the cluster domain cluster.local without asking the cluster")
	f.StringVarP(&o.output, "output", "o", "yaml", "output format: yaml or json")
	return cmd
}

// vizProfileMaxRPS bounds the requests tapped per second for a profile:
// enough to see every route of a busy service in a few seconds.
const vizProfileMaxRPS = 100

// vizTapEvents starts tapping resource r's pods with match: the events
// until ctx ends, then the taps' errors; stop releases what the tap holds
// once they are read. In a cluster it goes through viz's tap service, on
// the local mesh to the pods' proxies.
func vizTapEvents(ctx context.Context, cmd *cobra.Command, global *GlobalOptions, viz *vizOptions, r *vizv1.Resource, match *tapv1.Match, maxRPS uint32) (events <-chan tap.Event, errs <-chan error, stop func(), err error) {
	if !useLocalMesh(cmd, global) {
		return kubeTapEvents(ctx, global, viz, &vizv1.TapByResourceRequest{Target: r, Match: match, MaxRps: maxRPS})
	}
	ns := r.Namespace
	if r.Kind == client.KindNamespace {
		ns = r.Name
	}
	targets, err := localTapTargets(viz.stateDir, r.Kind, ns, r.Name)
	if err != nil {
		return nil, nil, nil, err
	}
	events, errs = tap.Observe(ctx, targets, match, maxRPS)
	return events, errs, func() {}, nil
}

// observeRoutes counts the requests the tapped pods served (their inbound
// requests), by method and path, until events ends.
func observeRoutes(events <-chan tap.Event) *profiles.Observed {
	seen := &profiles.Observed{}
	for ev := range events {
		if ev.Direction != "inbound" {
			continue
		}
		if r, ok := ev.Event.(*tapv1.TapEvent_RequestInit); ok {
			seen.Add(profiles.Request{Method: r.RequestInit.Method, Path: r.RequestInit.Path})
		}
	}
	return seen
}
