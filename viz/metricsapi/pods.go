package metricsapi

import (
	"context"
	"fmt"
	"net"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// Pod is a pod as the metrics API counts it.
type Pod struct {
	Namespace, Name string
	// OwnerKind and OwnerName: the workload owning the pod ("deployment",
	// "web"); empty for a bare pod.
	OwnerKind, OwnerName string
	// Status is the pod's phase (Running, Pending, Failed, ...).
	Status string
	IP     string
	Meshed bool
}

// has reports whether the pod belongs to the resource kind/name.
func (p Pod) has(kind, name string) bool {
	switch kind {
	case client.KindNamespace:
		return p.Namespace == name
	case client.KindPod:
		return p.Name == name
	}
	return p.OwnerKind == kind && p.OwnerName == name
}

// resourceName is the name of the pod's resource of kind, "" when it has none.
func (p Pod) resourceName(kind string) string {
	switch kind {
	case client.KindNamespace:
		return p.Namespace
	case client.KindPod:
		return p.Name
	}
	if p.OwnerKind == kind {
		return p.OwnerName
	}
	return ""
}

// PodSource lists pods; namespace "" means every namespace.
type PodSource interface {
	Pods(ctx context.Context, namespace string) ([]Pod, error)
}

// KubePods lists pods from the Kubernetes API: meshed when the pod has a
// linkerd-proxy container (or native sidecar).
type KubePods struct {
	Client kubernetes.Interface
}

// Pods implements PodSource.
func (k KubePods) Pods(ctx context.Context, namespace string) ([]Pod, error) {
	list, err := k.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	pods := make([]Pod, 0, len(list.Items))
	for i := range list.Items {
		p := &list.Items[i]
		o := k8s.PodOwner(p)
		pods = append(pods, Pod{
			Namespace: p.Namespace, Name: p.Name,
			OwnerKind: o.Kind, OwnerName: o.Name,
			Status: string(p.Status.Phase), IP: p.Status.PodIP,
			Meshed: hasProxy(p),
		})
	}
	return pods, nil
}

func hasProxy(p *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for _, c := range cs {
			if c.Name == k8s.ProxyContainerName {
				return true
			}
		}
	}
	return false
}

// PrometheusPods lists the pods Prometheus scrapes (every one has a proxy:
// only proxies are scraped), from the up series' target labels. It is the
// local mesh's pod source, where every pod is meshed; a pod whose proxy
// does not answer counts as Failed.
type PrometheusPods struct {
	API promv1.API
	// Job is the scrape job of the proxies ("linkerd-proxy").
	Job string
}

// workloadKinds are the owner kinds a scrape target may be labelled with.
var workloadKinds = []string{client.KindDeployment, client.KindStatefulSet, client.KindDaemonSet, client.KindJob}

// Pods implements PodSource.
func (p PrometheusPods) Pods(ctx context.Context, namespace string) ([]Pod, error) {
	s := selector{eq("job", p.Job), nonEmpty("pod")}
	if namespace != "" {
		s = append(s, eq(labelNamespace, namespace))
	}
	v, err := query(ctx, p.API, "up"+s.String())
	if err != nil {
		return nil, err
	}
	var pods []Pod
	for _, smp := range v {
		m := smp.Metric
		pod := Pod{Namespace: string(m[labelNamespace]), Name: string(m["pod"]), Status: "Running", Meshed: true}
		if smp.Value != 1 {
			pod.Status = "Failed"
		}
		if host, _, err := net.SplitHostPort(string(m["instance"])); err == nil {
			pod.IP = host
		}
		for _, k := range workloadKinds {
			if n := m[model.LabelName(kindLabel(k, false))]; n != "" {
				pod.OwnerKind, pod.OwnerName = k, string(n)
				break
			}
		}
		pods = append(pods, pod)
	}
	return pods, nil
}

// query runs an instant PromQL query that returns a vector.
func query(ctx context.Context, api promv1.API, q string) (model.Vector, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, _, err := api.Query(ctx, q, time.Now())
	if err != nil {
		return nil, &promError{query: q, err: err}
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, &promError{query: q, err: fmt.Errorf("got a %s, not a vector", v.Type())}
	}
	return vec, nil
}

// promError is a failed Prometheus query.
type promError struct {
	query string
	err   error
}

func (e *promError) Error() string { return fmt.Sprintf("query %s: %v", e.query, e.err) }
func (e *promError) Unwrap() error { return e.err }
