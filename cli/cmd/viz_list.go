package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd/cli/localmesh"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// tapPod is a meshed pod and whether its proxy serves tap.
type tapPod struct {
	namespace, name string
	tapEnabled      bool
}

// newCmdVizList is `linkerd viz list`: the meshed pods, and which of them
// can be tapped.
func newCmdVizList(global *GlobalOptions, viz *vizOptions) *cobra.Command {
	var namespace string
	var all bool
	cmd := &cobra.Command{
		Use:   "list [flags]",
		Short: "Lists which pods can be tapped",
		Long: `List the meshed pods of a namespace (-n) or of all (-A), split into those
whose proxy has tap enabled and those without: pods started before viz was
installed get tap when they restart.`,
		Example: `  linkerd viz list -n demo
  linkerd viz list -A`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ns := namespace
			if all {
				ns = ""
			}
			var pods []tapPod
			var err error
			if !useLocalMesh(cmd, global) {
				var kube kubernetes.Interface
				if kube, err = newKubeClient(global); err != nil {
					return err
				}
				pods, err = kubeTapPods(cmd.Context(), kube, ns)
			} else {
				pods, err = localTapPods(viz.stateDir, ns)
			}
			if err != nil {
				return err
			}
			return printTapPods(cmd.OutOrStdout(), pods, ns)
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace to list the pods of")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the pods of every namespace")
	return cmd
}

// localTapPods lists the pods of the local mesh at stateDir.
func localTapPods(stateDir, ns string) ([]tapPod, error) {
	pods, err := localmesh.Pods(stateDir, ns)
	if errors.Is(err, localmesh.ErrNotUp) {
		return nil, fmt.Errorf("no kubeconfig and no local mesh up at %s: start one (linkerd local up, linkerd demo)", stateDir)
	}
	if err != nil {
		return nil, err
	}
	out := make([]tapPod, len(pods))
	for i, p := range pods {
		out[i] = tapPod{namespace: p.Namespace, name: p.Name, tapEnabled: p.TapEnabled}
	}
	return out, nil
}

// kubeTapPods lists the meshed pods of namespace ns ("" for all): tap is
// enabled when the proxy container has the tap service's identity
// (LINKERD2_PROXY_TAP_SVC_NAME, which viz's tap-injector adds).
func kubeTapPods(ctx context.Context, kube kubernetes.Interface, ns string) ([]tapPod, error) {
	if ns != "" {
		if _, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("namespace %s does not exist", ns)
		} else if err != nil {
			return nil, fmt.Errorf("reading namespace %s: %w", ns, err)
		}
	}
	list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: k8s.ControllerNSLabel})
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	var pods []tapPod
	for i := range list.Items {
		pod := &list.Items[i]
		c := k8s.ProxyContainer(pod)
		if c == nil || pod.DeletionTimestamp != nil {
			continue
		}
		p := tapPod{namespace: pod.Namespace, name: pod.Name}
		for _, e := range c.Env {
			if e.Name == proxyenv.TapSvcName && e.Value != "" {
				p.tapEnabled = true
			}
		}
		pods = append(pods, p)
	}
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].namespace != pods[j].namespace {
			return pods[i].namespace < pods[j].namespace
		}
		return pods[i].name < pods[j].name
	})
	return pods, nil
}

// printTapPods writes the pods with tap, then those without.
func printTapPods(w io.Writer, pods []tapPod, ns string) error {
	if len(pods) == 0 {
		if ns == "" {
			return errors.New("no meshed pods in any namespace")
		}
		return fmt.Errorf("no meshed pods in namespace %s", ns)
	}
	var with, without []string
	for _, p := range pods {
		if p.tapEnabled {
			with = append(with, p.namespace+"/"+p.name)
		} else {
			without = append(without, p.namespace+"/"+p.name)
		}
	}
	if len(with) > 0 {
		fmt.Fprintln(w, "Pods with tap enabled:")
		for _, p := range with {
			fmt.Fprintf(w, "\t* %s\n", p)
		}
	}
	if len(without) > 0 {
		fmt.Fprintln(w, "Pods without tap (started before viz; restart them to enable tap):")
		for _, p := range without {
			fmt.Fprintf(w, "\t* %s\n", p)
		}
	}
	return nil
}
