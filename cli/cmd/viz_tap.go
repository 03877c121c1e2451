package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
	"github.com/linkerd-go/linkerd/viz/tap"
)

type vizTapOptions struct {
	namespace string
	method    string
	path      string
	authority string
	maxRPS    uint32
	output    string
	duration  time.Duration
	to        string
	toNS      string
}

// newCmdVizTap is `linkerd viz tap`: the live requests of a resource's pods.
func newCmdVizTap(global *GlobalOptions, viz *vizOptions) *cobra.Command {
	o := &vizTapOptions{}
	cmd := &cobra.Command{
		Use:   "tap [flags] (RESOURCE)",
		Short: "Listen to a traffic stream",
		Long: `Listen to the requests a resource's pods handle, as their proxies see them:
each request's head (req), its response's head (rsp) and its end (end, with
the gRPC status and the duration).

RESOURCE is deploy/NAME, sts/NAME, ds/NAME, job/NAME, po/NAME or ns/NAME
(on the local mesh: deploy, po or ns; a local-mesh workload is both a
deployment and a pod). --to keeps the requests the resource sends to
another one. Tap needs the pods' proxies to have tap enabled: on
Kubernetes, viz's tap-injector enables it on the meshed pods created after
linkerd-viz was installed; restart older ones.`,
		Example: `  linkerd viz tap deploy/web -n demo
  linkerd viz tap deploy/voting -n demo --path /linkerdgo.demo.v1.Voting/VoteDoughnut -o json
  linkerd viz tap deploy/web -n demo --to deploy/voting -o wide`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(o.output, "", "wide", "json"); err != nil {
				return err
			}
			r, err := client.ParseResource(o.namespace, args...)
			if err != nil {
				return err
			}
			if !slices.Contains(tap.TappableKinds, r.Kind) {
				return fmt.Errorf("cannot tap %s: tap takes a %s", r.Kind, strings.Join(tap.TappableKinds, ", "))
			}
			toNS := o.toNS
			if toNS == "" {
				toNS = r.Namespace
			}
			to, err := parseTarget("--to", o.to, toNS)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if o.duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, o.duration)
				defer cancel()
			}
			match := &tapv1.Match{Method: o.method, PathPrefix: o.path, Authority: o.authority}
			if !useLocalMesh(cmd, global) {
				return kubeTap(ctx, cmd.OutOrStdout(), global, viz, &vizv1.TapByResourceRequest{Target: r, To: to, Match: match, MaxRps: o.maxRPS}, o.output)
			}
			switch r.Kind {
			case client.KindDeployment, client.KindPod, client.KindNamespace:
			default:
				return fmt.Errorf("cannot tap %s on the local mesh: tap takes a deployment, a pod or a namespace", r.Kind)
			}
			ns := r.Namespace
			if r.Kind == client.KindNamespace {
				ns = r.Name
			}
			targets, err := localTapTargets(viz.stateDir, r.Kind, ns, r.Name)
			if err != nil {
				return err
			}
			if to != nil {
				match.Direction = "outbound"
			}
			events, errs := tap.Observe(ctx, targets, match, o.maxRPS)
			return printTap(cmd.OutOrStdout(), filterTo(events, to), errs, o.output)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "default", "namespace of the resource")
	f.StringVar(&o.method, "method", "", "only requests with this method")
	f.StringVar(&o.path, "path", "", "only requests whose path starts with this")
	f.StringVar(&o.authority, "authority", "", "only requests with this authority")
	f.Uint32Var(&o.maxRPS, "max-rps", 100, "most requests per second tapped, in all")
	f.StringVarP(&o.output, "output", "o", "", "output format: wide or json")
	f.DurationVar(&o.duration, "duration", 0, "stop after this long (default: until interrupted)")
	f.StringVar(&o.to, "to", "", "only requests to this resource (deploy/NAME, po/NAME, svc/NAME, ns/NAME)")
	f.StringVar(&o.toNS, "to-namespace", "", "namespace of the --to resource (default: --namespace)")
	return cmd
}

// localTapTargets resolves a resource of the local mesh to the pods to tap.
func localTapTargets(stateDir, kind, ns, name string) ([]tap.Target, error) {
	pods, err := localmesh.TapTargets(stateDir, kind, ns, name)
	if errors.Is(err, localmesh.ErrNotUp) {
		return nil, fmt.Errorf("no kubeconfig and no local mesh up at %s: start one (linkerd local up, linkerd demo)", stateDir)
	}
	if err != nil {
		return nil, err
	}
	targets := make([]tap.Target, 0, len(pods))
	for _, p := range pods {
		cfg, err := localmesh.TapTLS(stateDir, p.Identity)
		if err != nil {
			return nil, err
		}
		targets = append(targets, tap.Target{Namespace: p.Namespace, Pod: p.Name, Addr: p.Addr, TLS: cfg})
	}
	return targets, nil
}

// filterTo passes on the events of requests to the resource to (all when
// to is nil).
func filterTo(events <-chan tap.Event, to *vizv1.Resource) <-chan tap.Event {
	if to == nil {
		return events
	}
	out := make(chan tap.Event)
	go func() {
		defer close(out)
		for ev := range events {
			if tap.MatchTo(ev.TapEvent, to) {
				out <- ev
			}
		}
	}()
	return out
}

// printTap writes the events as Linkerd's tap does, until they end; a tap
// error ends it with that error.
func printTap(w io.Writer, events <-chan tap.Event, errs <-chan error, output string) error {
	var first error
	for ev := range events {
		if output == "json" {
			b, err := protojson.Marshal(ev.TapEvent)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "{\"namespace\":%q,\"pod\":%q,\"event\":%s}\n", ev.Namespace, ev.Pod, b)
			continue
		}
		fmt.Fprintln(w, tapLine(ev, output == "wide"))
	}
	for err := range errs {
		if first == nil {
			first = err
		}
	}
	return first
}

// tapLine renders one event as a line.
func tapLine(ev tap.Event, wide bool) string {
	dir := "out"
	if ev.Direction == "inbound" {
		dir = "in "
	}
	common := fmt.Sprintf("proxy=%s src=%s dst=%s tls=%s", dir, ev.Source, ev.Destination, ev.Tls)
	if wide {
		common += fmt.Sprintf(" pod=%s/%s", ev.Namespace, ev.Pod)
		if d := ev.DestinationMeta["deployment"]; d != "" {
			common += " dst_deployment=" + d
		}
	}
	switch e := ev.Event.(type) {
	case *tapv1.TapEvent_RequestInit:
		r := e.RequestInit
		return fmt.Sprintf("req id=%d %s :method=%s :authority=%s :path=%s", r.Id, common, r.Method, r.Authority, r.Path)
	case *tapv1.TapEvent_ResponseInit:
		r := e.ResponseInit
		return fmt.Sprintf("rsp id=%d %s :status=%d latency=%dµs", r.Id, common, r.HttpStatus, r.SinceRequestInitUs)
	case *tapv1.TapEvent_ResponseEnd:
		r := e.ResponseEnd
		line := fmt.Sprintf("end id=%d %s", r.Id, common)
		if r.GrpcStatus >= 0 {
			line += " grpc-status=" + codes.Code(r.GrpcStatus).String()
		}
		line += fmt.Sprintf(" duration=%dµs", r.SinceRequestInitUs)
		if r.Error != "" {
			line += fmt.Sprintf(" error=%q", r.Error)
		}
		return line
	}
	return ""
}
