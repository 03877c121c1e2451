package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd/pkg/k8s"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// State is what the checks share: their inputs, and what earlier checks
// found (the client, the installation's values) for later ones.
type State struct {
	// ControlPlaneNamespace is where the control plane is (or is to be)
	// installed.
	ControlPlaneNamespace string
	// DataPlaneNamespace restricts the data-plane checks to one namespace;
	// empty means all namespaces.
	DataPlaneNamespace string
	// CLIVersion is the version of the running CLI.
	CLIVersion string
	// NewClient builds the Kubernetes client ("can initialize the client").
	NewClient func() (kubernetes.Interface, error)
	// ServerTime returns the API server's clock (e.g. from a response's
	// Date header); nil when unavailable.
	ServerTime func(ctx context.Context) (time.Time, error)
	// KubectlVersion returns the local kubectl's version ("v1.32.4"); nil
	// skips the kubectl check.
	KubectlVersion func(ctx context.Context) (string, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ServerVersion returns the control plane's version; nil means the
	// cluster's (from linkerd-config).
	ServerVersion func(ctx context.Context) (string, error)

	// Kube is the client, set by "can initialize the client" (or preset).
	Kube kubernetes.Interface
	// NewDynamic builds the client of custom resources (the policy
	// resources); nil, with Dynamic nil, skips the linkerd-policy checks.
	NewDynamic func() (dynamic.Interface, error)
	// Dynamic is that client, made by NewDynamic when first needed (or preset).
	Dynamic dynamic.Interface
	// values is the installation's configuration, read by
	// "'linkerd-config' config map exists".
	values *Values
	// idm is the identity material, read by "certificate config is valid".
	idm *identityMaterial
	// policy is what the linkerd-policy checks read.
	policy *policyResources
}

func (s *State) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// errNoClient is returned by checks that need a client when none was made;
// fatal checks earlier in the run normally prevent reaching them.
var errNoClient = errors.New("no Kubernetes client: the kubernetes-api checks did not pass")

func (s *State) client() (kubernetes.Interface, error) {
	if s.Kube == nil {
		return nil, errNoClient
	}
	return s.Kube, nil
}

// Values is the part of the installation's Helm values (ConfigMap
// linkerd-config, key "values") the checks read.
type Values struct {
	LinkerdVersion          string `json:"linkerdVersion"`
	ControllerImageVersion  string `json:"controllerImageVersion"`
	ClusterNetworks         string `json:"clusterNetworks"`
	IdentityTrustAnchorsPEM string `json:"identityTrustAnchorsPEM"`
	Identity                struct {
		Issuer struct {
			Scheme string `json:"scheme"`
		} `json:"issuer"`
	} `json:"identity"`
	Proxy struct {
		Image struct {
			Version string `json:"version"`
		} `json:"image"`
	} `json:"proxy"`
}

// ParseValues parses the YAML stored in linkerd-config.
func ParseValues(data string) (*Values, error) {
	var v Values
	if err := yaml.Unmarshal([]byte(data), &v); err != nil {
		return nil, fmt.Errorf("parsing the %q key of ConfigMap %s: %w", k8s.ConfigValuesKey, k8s.ConfigMapName, err)
	}
	return &v, nil
}

// ReadValues reads and parses the values of the installation in namespace ns.
func ReadValues(ctx context.Context, kube kubernetes.Interface, ns string) (*Values, error) {
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, k8s.ConfigMapName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", ns, k8s.ConfigMapName, err)
	}
	data, ok := cm.Data[k8s.ConfigValuesKey]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s/%s has no %q key", ns, k8s.ConfigMapName, k8s.ConfigValuesKey)
	}
	return ParseValues(data)
}

// component is one control-plane deployment, with the ServiceAccount its
// pods run as and the RBAC it needs cluster-wide.
type component struct {
	Deployment     string
	ServiceAccount string
	// ClusterRBAC: a ClusterRole and ClusterRoleBinding named
	// k8s.ClusterRoleName(ns, Component).
	ClusterRBAC bool
	Component   string
}

// components are the control plane's deployments, in the order checks report them.
var components = []component{
	{Deployment: k8s.DestinationDeploymentName, ServiceAccount: k8s.DestinationDeploymentName, ClusterRBAC: true, Component: k8s.DestinationComponent},
	{Deployment: k8s.IdentityDeploymentName, ServiceAccount: k8s.IdentityDeploymentName, ClusterRBAC: true, Component: k8s.IdentityComponent},
	{Deployment: k8s.ProxyInjectorDeploymentName, ServiceAccount: k8s.ProxyInjectorDeploymentName, ClusterRBAC: true, Component: k8s.ProxyInjectorComponent},
}

// deployment is a control-plane deployment and its pods.
type deployment struct {
	Name string
	// Obj is nil when the deployment does not exist.
	Obj  *appsv1.Deployment
	Pods []corev1.Pod
}

// controlPlane reads the control-plane deployments and their pods (found
// with each deployment's selector).
func (s *State) controlPlane(ctx context.Context) ([]deployment, error) {
	kube, err := s.client()
	if err != nil {
		return nil, err
	}
	ns := s.ControlPlaneNamespace
	list, err := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing deployments in %s: %w", ns, err)
	}
	byName := map[string]*appsv1.Deployment{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing pods in %s: %w", ns, err)
	}
	out := make([]deployment, 0, len(components))
	for _, c := range components {
		d := deployment{Name: c.Deployment, Obj: byName[c.Deployment]}
		if d.Obj != nil && d.Obj.Spec.Selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(d.Obj.Spec.Selector)
			if err != nil {
				return nil, fmt.Errorf("deployment %s/%s: selector: %w", ns, d.Name, err)
			}
			if !sel.Empty() {
				for _, p := range pods.Items {
					if sel.Matches(labels.Set(p.Labels)) {
						d.Pods = append(d.Pods, p)
					}
				}
			}
		}
		slices.SortFunc(d.Pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, d)
	}
	return out, nil
}

// proxyReady reports whether the pod's linkerd-proxy container is ready,
// and if not, why.
func proxyReady(pod *corev1.Pod) (bool, string) {
	c := k8s.ProxyContainer(pod)
	if c == nil {
		return false, fmt.Sprintf("pod %q has no %s container", pod.Name, k8s.ProxyContainerName)
	}
	if pod.Status.Phase != corev1.PodRunning {
		return false, fmt.Sprintf("pod %q is %s", pod.Name, phase(pod))
	}
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, st := range statuses {
		if st.Name != k8s.ProxyContainerName {
			continue
		}
		if st.Ready {
			return true, ""
		}
		return false, fmt.Sprintf("container %s in pod %q is not ready%s", k8s.ProxyContainerName, pod.Name, waitingReason(st))
	}
	return false, fmt.Sprintf("container %s in pod %q has no status yet", k8s.ProxyContainerName, pod.Name)
}

// podReady reports whether every container of the pod is ready, and if
// not, why.
func podReady(pod *corev1.Pod) (bool, string) {
	if pod.Status.Phase != corev1.PodRunning {
		return false, fmt.Sprintf("pod %q is %s", pod.Name, phase(pod))
	}
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
			return true, ""
		}
	}
	for _, st := range pod.Status.ContainerStatuses {
		if !st.Ready {
			return false, fmt.Sprintf("container %s in pod %q is not ready%s", st.Name, pod.Name, waitingReason(st))
		}
	}
	return false, fmt.Sprintf("pod %q is not ready", pod.Name)
}

func phase(pod *corev1.Pod) string {
	for _, st := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if w := st.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" && w.Reason != "ContainerCreating" {
			return fmt.Sprintf("%s (container %s: %s)", orUnknown(string(pod.Status.Phase)), st.Name, w.Reason)
		}
	}
	return orUnknown(string(pod.Status.Phase))
}

func orUnknown(s string) string {
	if s == "" {
		return "not yet scheduled"
	}
	return s
}

func waitingReason(st corev1.ContainerStatus) string {
	switch {
	case st.State.Waiting != nil && st.State.Waiting.Reason != "":
		return ": " + st.State.Waiting.Reason
	case st.State.Terminated != nil && st.State.Terminated.Reason != "":
		return ": terminated, " + st.State.Terminated.Reason
	}
	return ""
}
