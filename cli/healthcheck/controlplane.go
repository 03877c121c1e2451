package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/linkerd-go/linkerd/pkg/k8s"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func linkerdExistenceCategory() Category {
	return Category{ID: LinkerdExistence, Checks: []Check{
		{
			Description: "'linkerd-config' config map exists",
			HintAnchor:  "l5d-existence-linkerd-config",
			Fatal:       true,
			Run: func(ctx context.Context, s *State) error {
				kube, err := s.client()
				if err != nil {
					return err
				}
				v, err := ReadValues(ctx, kube, s.ControlPlaneNamespace)
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("%w: is Linkerd installed in namespace %q? Install it (linkerd install | kubectl apply -f -) or pass its namespace with --linkerd-namespace", err, s.ControlPlaneNamespace)
				}
				if err != nil {
					return err
				}
				s.values = v
				return nil
			},
		},
		{
			Description: "control plane replica sets are ready",
			HintAnchor:  "l5d-existence-replicasets",
			Retry:       true,
			Run: func(ctx context.Context, s *State) error {
				return s.controlPlaneProblems(ctx, func(d deployment) []string {
					if d.Obj == nil {
						return []string{fmt.Sprintf("deployment %q not found", d.Name)}
					}
					if p := rolloutProblem(d.Obj); p != "" {
						return []string{fmt.Sprintf("deployment %q: %s", d.Name, p)}
					}
					return nil
				})
			},
		},
		{
			Description: "no unschedulable pods",
			HintAnchor:  "l5d-existence-unschedulable-pods",
			Retry:       true,
			Run: func(ctx context.Context, s *State) error {
				return s.controlPlaneProblems(ctx, func(d deployment) []string {
					var problems []string
					for _, p := range d.Pods {
						for _, c := range p.Status.Conditions {
							if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
								problems = append(problems, fmt.Sprintf("pod %q cannot be scheduled: %s", p.Name, c.Message))
							}
						}
					}
					return problems
				})
			},
		},
		{
			Description: "control plane pods are ready",
			HintAnchor:  "l5d-api-control-ready",
			Retry:       true,
			Fatal:       true,
			Run: func(ctx context.Context, s *State) error {
				return s.controlPlaneProblems(ctx, func(d deployment) []string {
					if p := deploymentPodsProblem(d); p != "" {
						return []string{p}
					}
					return nil
				})
			},
		},
		{
			Description: "policy controller and policy-validator are running",
			HintAnchor:  "l5d-policy-controller-running",
			Retry:       true,
			Run:         checkPolicyController,
		},
		{
			Description: "cluster networks contains all node podCIDRs",
			HintAnchor:  "l5d-cluster-networks-cidr",
			Warning:     true,
			Run:         checkClusterNetworks,
		},
	}}
}

// policyContainers are the policy controller's containers in the destination pods.
var policyContainers = []string{"policy", "policy-validator"}

// checkPolicyController checks that the destination pods run the policy
// controller and its validating webhook: each such container ready, at
// least one pod with both.
func checkPolicyController(ctx context.Context, s *State) error {
	return s.controlPlaneProblems(ctx, func(d deployment) []string {
		if d.Name != k8s.DestinationDeploymentName || d.Obj == nil {
			return nil
		}
		var problems []string
		serving := 0
		for _, pod := range d.Pods {
			ready := map[string]bool{}
			for _, cs := range pod.Status.ContainerStatuses {
				ready[cs.Name] = cs.Ready
			}
			all := true
			for _, c := range policyContainers {
				r, ok := ready[c]
				all = all && r
				if ok && !r {
					problems = append(problems, fmt.Sprintf("the %s container of pod %s is not ready", c, pod.Name))
				}
			}
			if all {
				serving++
			}
		}
		if serving == 0 && len(problems) == 0 {
			problems = append(problems, fmt.Sprintf("no %s pod runs the %s containers: reinstall the control plane", d.Name, strings.Join(policyContainers, " and ")))
		}
		return problems
	})
}

// rolloutProblem describes why a deployment cannot create or keep its
// replicas, or returns "".
func rolloutProblem(d *appsv1.Deployment) string {
	for _, c := range d.Status.Conditions {
		switch {
		case c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue:
			return fmt.Sprintf("cannot create pods: %s", c.Message)
		case c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse:
			return fmt.Sprintf("rollout stalled (%s): %s", c.Reason, c.Message)
		}
	}
	return ""
}

// deploymentPodsProblem describes why a control-plane deployment has no
// ready pod, or returns "". One ready pod is enough for the control plane
// to serve; a rollout in progress may have others starting.
func deploymentPodsProblem(d deployment) string {
	if d.Obj == nil {
		return fmt.Sprintf("deployment %q not found", d.Name)
	}
	if len(d.Pods) == 0 {
		return fmt.Sprintf("no running pods for %q", d.Name)
	}
	var why []string
	for i := range d.Pods {
		ok, reason := podReady(&d.Pods[i])
		if ok {
			return ""
		}
		why = append(why, reason)
	}
	return fmt.Sprintf("no ready pods for %q: %s", d.Name, strings.Join(why, ", "))
}

// controlPlaneProblems reads the control-plane deployments and fails with
// the problems that problem finds in each, nil for none.
func (s *State) controlPlaneProblems(ctx context.Context, problem func(d deployment) []string) error {
	deps, err := s.controlPlane(ctx)
	if err != nil {
		return err
	}
	var problems []string
	for _, d := range deps {
		problems = append(problems, problem(d)...)
	}
	return JoinProblems(problems)
}

func checkClusterNetworks(ctx context.Context, s *State) error {
	kube, err := s.client()
	if err != nil {
		return err
	}
	if s.values == nil {
		return Skip("no linkerd-config values")
	}
	var networks []netip.Prefix
	for item := range strings.SplitSeq(s.values.ClusterNetworks, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return fmt.Errorf("clusterNetworks in %s: %w", k8s.ConfigMapName, err)
		}
		networks = append(networks, p.Masked())
	}
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	var outside []string
	for _, n := range nodes.Items {
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				continue // not ours to validate
			}
			if !slices.ContainsFunc(networks, func(net netip.Prefix) bool { return containsPrefix(net, p) }) {
				outside = append(outside, fmt.Sprintf("%s (node %s)", c, n.Name))
			}
		}
	}
	if len(outside) > 0 {
		return fmt.Errorf("the clusterNetworks %q do not contain the pod networks %s: reinstall or upgrade with clusterNetworks including them", s.values.ClusterNetworks, strings.Join(outside, ", "))
	}
	return nil
}

// containsPrefix reports whether network includes every address of p.
func containsPrefix(network, p netip.Prefix) bool {
	return network.Bits() <= p.Bits() && network.Contains(p.Addr())
}

// crd is a custom resource the control plane uses.
type crd struct{ Group, Resource string }

func (c crd) String() string { return c.Resource + "." + c.Group }

// expectedCRDs are the CustomResourceDefinitions of `linkerd install --crds`.
var expectedCRDs = []crd{
	{"linkerd.io", "serviceprofiles"},
	{"policy.linkerd.io", "authorizationpolicies"},
	{"policy.linkerd.io", "httproutes"},
	{"policy.linkerd.io", "meshtlsauthentications"},
	{"policy.linkerd.io", "networkauthentications"},
	{"policy.linkerd.io", "serverauthorizations"},
	{"policy.linkerd.io", "servers"},
	{"split.smi-spec.io", "trafficsplits"},
}

func linkerdConfigCategory() Category {
	// exist checks that each named object exists.
	exist := func(desc, anchor string, names func(s *State) []string, get func(ctx context.Context, kube kubernetes.Interface, s *State, name string) error) Check {
		return Check{
			Description: desc,
			HintAnchor:  anchor,
			Run: func(ctx context.Context, s *State) error {
				kube, err := s.client()
				if err != nil {
					return err
				}
				return missingObjects(names(s), func(name string) error { return get(ctx, kube, s, name) })
			},
		}
	}
	rbacNames := func(s *State) []string {
		var names []string
		for _, c := range components {
			if c.ClusterRBAC {
				names = append(names, k8s.ClusterRoleName(s.ControlPlaneNamespace, c.Component))
			}
		}
		return names
	}
	return Category{ID: LinkerdConfig, Checks: []Check{
		{
			Description: "control plane Namespace exists",
			HintAnchor:  "l5d-existence-ns",
			Fatal:       true,
			Run: func(ctx context.Context, s *State) error {
				kube, err := s.client()
				if err != nil {
					return err
				}
				_, err = kube.CoreV1().Namespaces().Get(ctx, s.ControlPlaneNamespace, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("the %q namespace does not exist: install the control plane, or pass its namespace with --linkerd-namespace", s.ControlPlaneNamespace)
				}
				return err
			},
		},
		exist("control plane ClusterRoles exist", "l5d-existence-cr", rbacNames,
			func(ctx context.Context, kube kubernetes.Interface, _ *State, name string) error {
				_, err := kube.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
				return err
			}),
		exist("control plane ClusterRoleBindings exist", "l5d-existence-crb", rbacNames,
			func(ctx context.Context, kube kubernetes.Interface, _ *State, name string) error {
				_, err := kube.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
				return err
			}),
		exist("control plane ServiceAccounts exist", "l5d-existence-sa",
			func(*State) []string {
				var names []string
				for _, c := range components {
					names = append(names, c.ServiceAccount)
				}
				return names
			},
			func(ctx context.Context, kube kubernetes.Interface, s *State, name string) error {
				_, err := kube.CoreV1().ServiceAccounts(s.ControlPlaneNamespace).Get(ctx, name, metav1.GetOptions{})
				return err
			}),
		{
			Description: "control plane CustomResourceDefinitions exist",
			HintAnchor:  "l5d-existence-crd",
			Run:         checkCRDs,
		},
		{
			Description: "control plane MutatingWebhookConfigurations exist",
			HintAnchor:  "l5d-existence-mwc",
			Run:         func(ctx context.Context, s *State) error { return s.webhookConfigsExist(ctx, true) },
		},
		{
			Description: "control plane ValidatingWebhookConfigurations exist",
			HintAnchor:  "l5d-existence-vwc",
			Run:         func(ctx context.Context, s *State) error { return s.webhookConfigsExist(ctx, false) },
		},
	}}
}

// webhookConfigsExist checks that the configurations of the control
// plane's mutating (or validating) webhooks exist; an optional webhook
// counts only when installed.
func (s *State) webhookConfigsExist(ctx context.Context, mutating bool) error {
	kube, err := s.client()
	if err != nil {
		return err
	}
	var configs []string
	for _, w := range webhooks {
		if w.Mutating != mutating {
			continue
		}
		if ok, err := s.webhookInstalled(ctx, w); err != nil {
			return err
		} else if ok {
			configs = append(configs, w.Config)
		}
	}
	if len(configs) == 0 {
		return Skip("none installed")
	}
	return missingObjects(configs, func(name string) error {
		var err error
		if mutating {
			_, err = kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		} else {
			_, err = kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		}
		return err
	})
}

// missingObjects reads each of names with get and fails naming those not
// found; any other error stops it.
func missingObjects(names []string, get func(name string) error) error {
	var missing []string
	for _, n := range names {
		err := get(n)
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, n)
		case err != nil:
			return fmt.Errorf("reading %s: %w", n, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: reinstall the control plane (linkerd install | kubectl apply -f -)", strings.Join(missing, ", "))
	}
	return nil
}

// checkCRDs asks the API server's discovery which resources it serves: a
// CustomResourceDefinition that exists but is not established is missing
// too.
func checkCRDs(ctx context.Context, s *State) error {
	kube, err := s.client()
	if err != nil {
		return err
	}
	_, lists, err := kube.Discovery().ServerGroupsAndResourcesWithContext(ctx)
	if err != nil && len(lists) == 0 {
		return fmt.Errorf("listing the API server's resources: %w", err)
	}
	served := map[crd]bool{}
	for _, l := range lists {
		group, _, _ := strings.Cut(l.GroupVersion, "/")
		if !strings.Contains(l.GroupVersion, "/") {
			group = ""
		}
		for _, r := range l.APIResources {
			served[crd{group, r.Name}] = true
		}
	}
	var missing []string
	for _, c := range expectedCRDs {
		if !served[c] {
			missing = append(missing, c.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing CustomResourceDefinitions %s: install them (linkerd install --crds | kubectl apply -f -)", strings.Join(missing, ", "))
	}
	return nil
}

func linkerdVersionCategory() Category {
	return Category{ID: LinkerdVersion, Checks: []Check{
		{
			Description: "can determine the CLI version",
			HintAnchor:  "l5d-version-cli",
			Run: func(_ context.Context, s *State) error {
				if s.CLIVersion == "" {
					return errors.New("the CLI has no version")
				}
				return Note("the CLI is %s; whether a newer release exists is not checked (that needs the internet)", s.CLIVersion)
			},
		},
	}}
}

func controlPlaneVersionCategory() Category {
	return Category{ID: ControlPlaneVersion, Checks: []Check{
		{
			Description: "can retrieve the control plane version",
			HintAnchor:  "l5d-version-control",
			Run: func(ctx context.Context, s *State) error {
				_, err := s.controlPlaneVersion(ctx)
				return err
			},
		},
		{
			Description: "control plane and cli versions match",
			HintAnchor:  "l5d-version-control",
			Warning:     true,
			Run: func(ctx context.Context, s *State) error {
				v, err := s.controlPlaneVersion(ctx)
				if err != nil {
					return Skip("no control plane version")
				}
				if v != s.CLIVersion {
					return fmt.Errorf("control plane running %s but cli running %s: upgrade one to match the other", v, s.CLIVersion)
				}
				return nil
			},
		},
	}}
}

func (s *State) controlPlaneVersion(ctx context.Context) (string, error) {
	if s.ServerVersion != nil {
		return s.ServerVersion(ctx)
	}
	kube, err := s.client()
	if err != nil {
		return "", err
	}
	return serverVersion(ctx, kube, s.ControlPlaneNamespace, s.values)
}

// ServerVersion returns the version of the control plane in namespace ns:
// the linkerdVersion of its values (ConfigMap linkerd-config), else the tag
// of its controller image.
func ServerVersion(ctx context.Context, kube kubernetes.Interface, ns string) (string, error) {
	return serverVersion(ctx, kube, ns, nil)
}

func serverVersion(ctx context.Context, kube kubernetes.Interface, ns string, values *Values) (string, error) {
	if values == nil {
		v, err := ReadValues(ctx, kube, ns)
		if err != nil {
			return "", err
		}
		values = v
	}
	if values.LinkerdVersion != "" {
		return values.LinkerdVersion, nil
	}
	// The chart defaults linkerdVersion to its own version when rendering;
	// the controller image carries it.
	d, err := kube.AppsV1().Deployments(ns).Get(ctx, k8s.IdentityDeploymentName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("linkerd-config has no linkerdVersion, and reading deployment %s: %w", k8s.IdentityDeploymentName, err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == k8s.ProxyContainerName {
			continue
		}
		if tag := imageTag(c.Image); tag != "" {
			return tag, nil
		}
	}
	return "", fmt.Errorf("linkerd-config has no linkerdVersion, and deployment %s's image has no tag", k8s.IdentityDeploymentName)
}

// imageTag returns the tag of an image reference ("" for none or a digest only).
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash {
		return ""
	}
	return image[colon+1:]
}

func linkerdControlPlaneProxyCategory() Category {
	return Category{ID: LinkerdControlPlaneProxy, Checks: []Check{
		{
			Description: "control plane proxies are healthy",
			HintAnchor:  "l5d-cp-proxy-healthy",
			Retry:       true,
			Run: func(ctx context.Context, s *State) error {
				return s.controlPlaneProblems(ctx, func(d deployment) []string {
					var problems []string
					for i := range d.Pods {
						if ok, why := proxyReady(&d.Pods[i]); !ok {
							problems = append(problems, why)
						}
					}
					return problems
				})
			},
		},
		{
			Description: "control plane proxies and cli versions match",
			HintAnchor:  "l5d-cp-proxy-cli-version",
			Warning:     true,
			Run: func(ctx context.Context, s *State) error {
				deps, err := s.controlPlane(ctx)
				if err != nil {
					return err
				}
				var pods []corev1.Pod
				for _, d := range deps {
					pods = append(pods, d.Pods...)
				}
				return proxyVersionsMatch(pods, s.CLIVersion)
			},
		},
	}}
}

// proxyVersionsMatch fails listing the pods whose proxy version (annotation
// linkerd.io/proxy-version) is not want.
func proxyVersionsMatch(pods []corev1.Pod, want string) error {
	var off []string
	for _, p := range pods {
		if k8s.ProxyContainer(&p) == nil {
			continue
		}
		v := p.Annotations[k8s.ProxyVersionAnnotation]
		if v == want {
			continue
		}
		if v == "" {
			v = "unknown version"
		}
		off = append(off, fmt.Sprintf("%s/%s (%s)", p.Namespace, p.Name, v))
	}
	if len(off) > 0 {
		return fmt.Errorf("%s running a proxy that is not %s: %s; restart them after upgrading (kubectl rollout restart)", plural(len(off), "pod", "pods"), want, strings.Join(off, ", "))
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// JoinProblems makes one error of a list of problems, nil for none.
func JoinProblems(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "\n"))
}
