package cmd

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
)

// authzMaxPods bounds the pods of a workload whose policy is asked for.
const authzMaxPods = 10

type authzOptions struct {
	namespace  string
	policyAddr string
	stateDir   string
	timeout    time.Duration
}

func newCmdAuthz(global *GlobalOptions) *cobra.Command {
	opts := &authzOptions{}
	cmd := &cobra.Command{
		Use:   "authz [flags] resource",
		Short: "List authorizations for a resource",
		Long: `List authorizations for a resource.

For each pod of the resource (a deployment, statefulset, daemonset,
replicaset or pod), the policy controller is asked for the inbound policy
its proxy enforces; the table lists, per route, the server and the
authorization policies or server authorizations that allow clients (a
default policy shows as default:<name>).`,
		Example: `  linkerd authz -n emojivoto deploy/web
  linkerd authz -n emojivoto pod web-5f86686c4d-58p7k`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, err := parseAuthzResource(args)
			if err != nil {
				return err
			}
			var pods []string
			if useLocalMesh(cmd, global) {
				// A local workload is one pod, named as the workload.
				pods = []string{name}
			} else {
				if pods, err = clusterWorkloadPods(cmd.Context(), global, opts.namespace, kind, name); err != nil {
					return err
				}
			}
			addr, done, err := controlPlaneAPI(cmd, global, opts.policyAddr, opts.stateDir, k8s.PolicyGRPCPort, localmesh.PolicyAddr)
			if err != nil {
				return err
			}
			defer done()
			rows, err := authzRows(cmd.Context(), addr, opts, pods)
			if err != nil {
				return err
			}
			return printAuthzRows(cmd.OutOrStdout(), rows)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.namespace, "namespace", "n", "default", "Namespace of resource")
	flags.StringVar(&opts.policyAddr, "policy-addr", "", "address of the policy controller (host:port); default: the local mesh's, or a port-forward to linkerd-destination")
	addStateDirFlag(flags, &opts.stateDir)
	flags.DurationVar(&opts.timeout, "timeout", 10*time.Second, "how long to wait for the policy controller's answers")
	return cmd
}

// authzKinds maps the accepted resource types to their canonical kind.
var authzKinds = map[string]string{
	"pod": "pod", "pods": "pod", "po": "pod",
	"deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
	"statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset",
	"daemonset": "daemonset", "daemonsets": "daemonset", "ds": "daemonset",
	"replicaset": "replicaset", "replicasets": "replicaset", "rs": "replicaset",
}

// parseAuthzResource accepts "TYPE/NAME" or "TYPE NAME".
func parseAuthzResource(args []string) (kind, name string, err error) {
	typ, name := args[0], ""
	if len(args) == 2 {
		name = args[1]
	} else if t, n, ok := strings.Cut(args[0], "/"); ok {
		typ, name = t, n
	}
	kind, ok := authzKinds[strings.ToLower(typ)]
	if !ok {
		return "", "", fmt.Errorf("unsupported resource type %q (deployment, statefulset, daemonset, replicaset or pod)", typ)
	}
	if name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("invalid resource %q: want TYPE/NAME or TYPE NAME", strings.Join(args, " "))
	}
	return kind, name, nil
}

// clusterWorkloadPods returns the names of the resource's pods (at most authzMaxPods).
func clusterWorkloadPods(ctx context.Context, global *GlobalOptions, ns, kind, name string) ([]string, error) {
	_, kube, err := kubeClients(global)
	if err != nil {
		return nil, err
	}
	if kind == "pod" {
		if _, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
		}
		return []string{name}, nil
	}
	var sel *metav1.LabelSelector
	switch kind {
	case "deployment":
		obj, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("deployment %s/%s: %w", ns, name, err)
		}
		sel = obj.Spec.Selector
	case "statefulset":
		obj, err := kube.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("statefulset %s/%s: %w", ns, name, err)
		}
		sel = obj.Spec.Selector
	case "daemonset":
		obj, err := kube.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("daemonset %s/%s: %w", ns, name, err)
		}
		sel = obj.Spec.Selector
	case "replicaset":
		obj, err := kube.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("replicaset %s/%s: %w", ns, name, err)
		}
		sel = obj.Spec.Selector
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: selector: %w", kind, ns, name, err)
	}
	list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s %s/%s: %w", kind, ns, name, err)
	}
	var pods []string
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && len(pods) < authzMaxPods {
			pods = append(pods, p.Name)
		}
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("%s %s/%s has no pods", kind, ns, name)
	}
	return pods, nil
}

// authzRow is one line of the table.
type authzRow struct{ route, server, policy, saz string }

// authzRows asks the policy controller at addr for each pod's policy.
func authzRows(ctx context.Context, addr string, opts *authzOptions, pods []string) ([]authzRow, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("policy controller at %s: %w", addr, err)
	}
	defer conn.Close()
	api := policyv1.NewInboundPolicyClient(conn)
	seen := map[authzRow]bool{}
	var rows []authzRow
	for _, pod := range pods {
		msg, err := firstPolicy(ctx, api, opts.namespace, pod, opts.timeout)
		if err != nil {
			return nil, fmt.Errorf("policy controller at %s: %w", addr, err)
		}
		def, ports, err := inboundpolicy.FromProto(msg)
		if err != nil {
			return nil, fmt.Errorf("the policy controller's answer for %s: %w", pod, err)
		}
		all := []inboundpolicy.Port{def}
		for _, p := range ports {
			all = append(all, p)
		}
		for _, r := range policyRows(all) {
			if !seen[r] {
				seen[r] = true
				rows = append(rows, r)
			}
		}
	}
	slices.SortFunc(rows, func(a, b authzRow) int {
		return cmp.Or(cmp.Compare(a.server, b.server), cmp.Compare(a.route, b.route), cmp.Compare(a.policy, b.policy), cmp.Compare(a.saz, b.saz))
	})
	return rows, nil
}

func firstPolicy(ctx context.Context, api policyv1.InboundPolicyClient, ns, pod string, timeout time.Duration) (*policyv1.WorkloadPolicy, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	workload, _ := json.Marshal(map[string]string{"ns": ns, "pod": pod})
	stream, err := api.Watch(ctx, &policyv1.WatchRequest{Workload: string(workload)})
	if err != nil {
		return nil, err
	}
	return stream.Recv()
}

// policyRows lists the authorizations of ports: per route ("*" for all
// the server's requests), the server and each authorization by its kind.
func policyRows(ports []inboundpolicy.Port) []authzRow {
	var rows []authzRow
	for _, p := range ports {
		server := p.ServerName
		if p.ServerKind == inboundpolicy.KindDefault {
			server = "default:" + p.ServerName
		}
		add := func(route string, authz []inboundpolicy.Authorization) {
			for _, a := range authz {
				r := authzRow{route: route, server: server}
				switch a.Kind {
				case inboundpolicy.KindServerAuthorization:
					r.saz = a.Name
				case inboundpolicy.KindDefault:
					r.policy = "default:" + a.Name
				default:
					r.policy = a.Name
				}
				rows = append(rows, r)
			}
		}
		if len(p.Routes) == 0 {
			add("*", p.Authorizations)
		}
		for _, rt := range p.Routes {
			add(rt.Name, rt.Authorizations)
		}
	}
	return rows
}

func printAuthzRows(out io.Writer, rows []authzRow) error {
	if len(rows) == 0 {
		fmt.Fprintln(out, "No authorizations: every client is denied")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tSERVER\tAUTHORIZATION_POLICY\tSERVER_AUTHORIZATION")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.route, r.server, r.policy, r.saz)
	}
	return tw.Flush()
}
