package tap

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd/pkg/identity"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// The tap-injector's annotations (Linkerd's names).
const (
	// TapEnabledAnnotation marks a pod whose proxy the tap-injector gave
	// the tap service's identity.
	TapEnabledAnnotation = "viz.linkerd.io/tap-enabled"
	// DisableTapAnnotation ("true") on a pod or its namespace keeps the
	// tap-injector away.
	DisableTapAnnotation = "viz.linkerd.io/disable-tap"
)

// DefaultPort is the proxies' control port, where their tap API is.
const DefaultPort = 4190

// TappableKinds are the kinds a tap may target.
var TappableKinds = []string{client.KindNamespace, client.KindDeployment, client.KindStatefulSet, client.KindDaemonSet, client.KindJob, client.KindPod}

// PodTarget is a pod to tap: its tap API's address and its proxy's identity.
type PodTarget struct {
	Namespace, Name string
	Addr, Identity  string
}

// Resolver resolves a resource to the pods to tap, from the Kubernetes API.
type Resolver struct {
	Client kubernetes.Interface
	// ControlPlaneNamespace and TrustDomain name the proxies' identities
	// (a pod's linkerd.io/control-plane-ns label wins over the namespace).
	ControlPlaneNamespace, TrustDomain string
	// Port is the proxies' tap port (0: DefaultPort).
	Port int
}

// Resolve returns the running meshed pods of the resource whose proxies
// serve tap. The errors are gRPC statuses: InvalidArgument for a kind that
// cannot be tapped, NotFound for a resource that does not exist,
// FailedPrecondition when no pod can be tapped (saying why: none running,
// not meshed, or tap not enabled, with the advice to restart them).
func (r *Resolver) Resolve(ctx context.Context, kind, ns, name string) ([]PodTarget, error) {
	if !tappable(kind) {
		return nil, status.Errorf(codes.InvalidArgument, "cannot tap %s: tap takes a %s", kind, strings.Join(TappableKinds, ", "))
	}
	if kind == client.KindNamespace {
		ns = name
	}
	if err := r.exists(ctx, kind, ns, name); err != nil {
		return nil, err
	}
	list, err := r.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "list pods in namespace %s: %v", ns, err)
	}
	port := r.Port
	if port == 0 {
		port = DefaultPort
	}
	var targets []PodTarget
	var running, notEnabled []string
	for i := range list.Items {
		p := &list.Items[i]
		if !selects(p, kind, name) || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || p.DeletionTimestamp != nil {
			continue
		}
		running = append(running, p.Name)
		if k8s.ProxyContainer(p) == nil {
			continue
		}
		if !TapEnabled(p) {
			notEnabled = append(notEnabled, p.Name)
			continue
		}
		cpNS := p.Labels[k8s.ControllerNSLabel]
		if cpNS == "" {
			cpNS = r.ControlPlaneNamespace
		}
		targets = append(targets, PodTarget{
			Namespace: p.Namespace, Name: p.Name,
			Addr:     net.JoinHostPort(p.Status.PodIP, strconv.Itoa(port)),
			Identity: identity.Name(k8s.ServiceAccountName(p), p.Namespace, cpNS, r.TrustDomain),
		})
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].Name < targets[j].Name })
	res := kind + "/" + name
	switch {
	case len(targets) > 0:
		return targets, nil
	case len(notEnabled) > 0:
		sort.Strings(notEnabled)
		return nil, status.Errorf(codes.FailedPrecondition, "no pods to tap for %s: tap not enabled on %s (started before linkerd-viz was installed); restart them: %s",
			res, strings.Join(notEnabled, ", "), restartAdvice(kind, ns, name))
	case len(running) > 0:
		return nil, status.Errorf(codes.FailedPrecondition, "no pods to tap for %s: its pods are not meshed (inject them: kubectl get %s -n %s -o yaml | linkerd inject - | kubectl apply -f -)", res, kindArg(kind, name), ns)
	default:
		return nil, status.Errorf(codes.FailedPrecondition, "no pods to tap for %s: no running pods in namespace %s", res, ns)
	}
}

// TapEnabled reports whether the pod's proxy serves tap: it was given the
// tap service's identity.
func TapEnabled(p *corev1.Pod) bool {
	c := k8s.ProxyContainer(p)
	if c == nil {
		return false
	}
	for _, e := range c.Env {
		if e.Name == proxyenv.TapSvcName && e.Value != "" {
			return true
		}
	}
	return false
}

func tappable(kind string) bool {
	for _, k := range TappableKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// exists answers NotFound for a resource that does not exist.
func (r *Resolver) exists(ctx context.Context, kind, ns, name string) error {
	var err error
	get := metav1.GetOptions{}
	switch kind {
	case client.KindNamespace:
		_, err = r.Client.CoreV1().Namespaces().Get(ctx, name, get)
	case client.KindPod:
		_, err = r.Client.CoreV1().Pods(ns).Get(ctx, name, get)
	case client.KindDeployment:
		_, err = r.Client.AppsV1().Deployments(ns).Get(ctx, name, get)
	case client.KindStatefulSet:
		_, err = r.Client.AppsV1().StatefulSets(ns).Get(ctx, name, get)
	case client.KindDaemonSet:
		_, err = r.Client.AppsV1().DaemonSets(ns).Get(ctx, name, get)
	case client.KindJob:
		_, err = r.Client.BatchV1().Jobs(ns).Get(ctx, name, get)
	}
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err) && kind == client.KindNamespace:
		return status.Errorf(codes.NotFound, "namespace %s not found", name)
	case apierrors.IsNotFound(err):
		return status.Errorf(codes.NotFound, "%s %s not found in namespace %s", kind, name, ns)
	default:
		return status.Errorf(codes.Unavailable, "look up %s/%s: %v", kind, name, err)
	}
}

// selects reports whether the pod belongs to the resource.
func selects(p *corev1.Pod, kind, name string) bool {
	switch kind {
	case client.KindNamespace:
		return true
	case client.KindPod:
		return p.Name == name
	}
	o := k8s.PodOwner(p)
	return o.Kind == kind && o.Name == name
}

func kindArg(kind, name string) string {
	if kind == client.KindNamespace {
		return "deploy"
	}
	return kind + "/" + name
}

// restartAdvice is the command that recreates the resource's pods, so that
// the tap-injector sees them.
func restartAdvice(kind, ns, name string) string {
	switch kind {
	case client.KindNamespace:
		return "kubectl rollout restart deploy -n " + ns
	case client.KindPod, client.KindJob:
		return fmt.Sprintf("delete %s/%s -n %s so that it is recreated", kind, name, ns)
	}
	return fmt.Sprintf("kubectl rollout restart %s/%s -n %s", kind, name, ns)
}
