package inject

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/charts/chartvalues"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// Workload is a pod, or a workload's pod template, to inject.
type Workload struct {
	// Kind is the lower-case kind of the workload the pod belongs to
	// ("deployment", "statefulset", "daemonset", "job", "cronjob",
	// "replicaset", "replicationcontroller", or "pod" for a bare pod).
	Kind string
	// Name is the workload's name.
	Name string
	// Namespace is the pod's namespace ("" when unknown).
	Namespace string
	// Meta and Spec are the pod's (template's) metadata and spec. Inject
	// does not modify them.
	Meta *metav1.ObjectMeta
	Spec *corev1.PodSpec
}

// String formats the workload as kind/name, e.g. "deployment/web".
func (w *Workload) String() string { return w.Kind + "/" + w.Name }

// workloadLabels maps workload kinds to the label naming the pod's workload.
var workloadLabels = map[string]string{
	"deployment":            k8s.ProxyDeploymentLabel,
	"replicaset":            k8s.ProxyReplicaSetLabel,
	"statefulset":           k8s.ProxyStatefulSetLabel,
	"daemonset":             k8s.ProxyDaemonSetLabel,
	"job":                   k8s.ProxyJobLabel,
	"cronjob":               k8s.ProxyCronJobLabel,
	"replicationcontroller": k8s.ProxyReplicationControllerLabel,
}

// ErrNoTrustAnchors is returned when the installation's values have no
// identityTrustAnchorsPEM: injected proxies could not verify anyone.
var ErrNoTrustAnchors = errors.New("the installation values have no identityTrustAnchorsPEM (the identity trust anchors)")

// Injector injects pods with one installation's values.
type Injector struct {
	values    Values
	createdBy string
}

// New returns an Injector for an installation's values (typically
// ParseValues of linkerd-config, or DefaultValues with overrides).
// createdBy is written to linkerd.io/created-by, e.g.
// "linkerd/proxy-injector stable-1.0.0".
func New(values Values, createdBy string) (*Injector, error) {
	if _, err := loadPatchChart(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(chartvalues.String(values, "identityTrustAnchorsPEM")) == "" {
		return nil, ErrNoTrustAnchors
	}
	return &Injector{values: withVersion(deepCopy(values)), createdBy: createdBy}, nil
}

// ControllerNamespace is the control plane's namespace in the values.
func (inj *Injector) ControllerNamespace() string {
	return chartvalues.String(inj.values, "controllerNamespace")
}

// Options change how Inject decides.
type Options struct {
	// RequireAnnotation skips pods that neither they nor their namespace
	// annotate with linkerd.io/inject: enabled (or ingress), as the webhook
	// does. `linkerd inject --manual` injects unless told "disabled".
	RequireAnnotation bool
}

// Result is the outcome of Inject: a Skip, or the patch to apply.
type Result struct {
	// Skip is why the pod is left alone; nil when Patch is to be applied.
	Skip *Skip
	// Patch adds the proxy to the pod (or pod template).
	Patch Patch
	// Warnings report configuration annotations that were ignored because
	// their values are invalid.
	Warnings []string
}

// Inject decides whether the workload gets the proxy and, if so, returns
// the patch that adds it. nsAnnotations are the pod's namespace's
// annotations (nil when unknown). An error means the injector itself failed
// (e.g. the templates could not be rendered): callers admit the pod
// unchanged.
func (inj *Injector) Inject(w *Workload, nsAnnotations map[string]string, opts Options) (*Result, error) {
	mode, skip := check(w, nsAnnotations, opts.RequireAnnotation)
	if skip != nil {
		return &Result{Skip: skip}, nil
	}
	values, warnings := inj.PodValues(w, nsAnnotations)
	chartvalues.Set(values, "proxy.isIngress", mode.value == k8s.ProxyInjectIngress)
	f, err := render(values)
	if err != nil {
		return nil, fmt.Errorf("injecting %s: %w", w, err)
	}
	return &Result{Patch: buildPatch(w, f), Warnings: warnings}, nil
}

// PodValues returns the chart values for one pod: the installation's,
// overridden by the pod's and its namespace's configuration annotations
// (the pod's win), with the per-pod values the templates need. Invalid
// annotation values are ignored and reported as warnings.
func (inj *Injector) PodValues(w *Workload, nsAnnotations map[string]string) (Values, []string) {
	v := deepCopy(inj.values)
	var warnings []string
	warn := func(name, value, at string, err error) {
		warnings = append(warnings, fmt.Sprintf("ignoring annotation %s=%q on the %s: %v", name, value, at, err))
	}
	annotations := map[string]any{}
	for _, s := range settings {
		name, value, at, ok := lookup(s.names, w.Meta.Annotations, nsAnnotations)
		if !ok {
			continue
		}
		x, err := s.parse(strings.TrimSpace(value), w.Spec)
		if err != nil {
			warn(name, value, at, err)
			continue
		}
		chartvalues.Set(v, s.path, x)
		if at == AtNamespace {
			// As Linkerd does: the pod carries the configuration it inherited,
			// for whoever reads it later (the policy controller).
			annotations[name] = value
		}
	}

	additional, _ := chartvalues.Get(v, "proxy.additionalEnv")
	env, err := mergeAdditionalEnv(additional, nsAnnotations, w.Meta.Annotations)
	if err != nil {
		warn(ProxyAdditionalEnvAnnotation, "", "pod or namespace", err)
	} else if env != nil {
		chartvalues.Set(v, "proxy.additionalEnv", env)
	}

	if chartvalues.String(v, "proxy.podInboundPorts") == "" {
		chartvalues.Set(v, "proxy.podInboundPorts", containerPorts(w.Spec))
	}

	if inj.createdBy != "" {
		annotations[k8s.CreatedByAnnotation] = inj.createdBy
	}
	labels := map[string]any{}
	if w.Namespace != "" {
		labels[k8s.WorkloadNamespaceLabel] = w.Namespace
	}
	if l, ok := workloadLabels[w.Kind]; ok && w.Name != "" {
		labels[l] = w.Name
	}
	chartvalues.Set(v, "pod.annotations", annotations)
	chartvalues.Set(v, "pod.labels", labels)
	return v, warnings
}

// lookup finds the first of names on the pod, else on the namespace.
func lookup(names []string, podAnn, nsAnn map[string]string) (name, value, at string, ok bool) {
	for _, src := range []struct {
		ann map[string]string
		at  string
	}{{podAnn, AtWorkload}, {nsAnn, AtNamespace}} {
		for _, n := range names {
			if v, found := src.ann[n]; found {
				return n, v, src.at, true
			}
		}
	}
	return "", "", "", false
}

// mergeAdditionalEnv merges the chart's proxy.additionalEnv with the
// namespace's and then the pod's proxy-additional-env annotations, by
// variable name (later wins, first position kept). It returns nil when no
// annotation is set.
func mergeAdditionalEnv(base any, nsAnn, podAnn map[string]string) (any, error) {
	var layers [][]corev1.EnvVar
	for _, ann := range []map[string]string{nsAnn, podAnn} {
		raw, ok := ann[ProxyAdditionalEnvAnnotation]
		if !ok {
			continue
		}
		env, err := parseAdditionalEnv(raw)
		if err != nil {
			return nil, err
		}
		layers = append(layers, env)
	}
	if len(layers) == 0 {
		return nil, nil
	}
	var merged []any
	index := map[string]int{}
	put := func(name string, item any) {
		if i, ok := index[name]; ok {
			merged[i] = item
			return
		}
		index[name] = len(merged)
		merged = append(merged, item)
	}
	if items, ok := base.([]any); ok {
		for _, item := range items {
			if m, ok := item.(map[string]any); ok {
				name, _ := m["name"].(string)
				put(name, item)
			}
		}
	}
	for _, layer := range layers {
		for _, e := range layer {
			item, err := toValue(e)
			if err != nil {
				return nil, err
			}
			put(e.Name, item)
		}
	}
	return merged, nil
}

// containerPorts lists the TCP ports the pod's containers (and native
// sidecars) declare, sorted, as LINKERD2_PROXY_INBOUND_PORTS wants them.
func containerPorts(spec *corev1.PodSpec) string {
	var ports []int
	add := func(c corev1.Container) {
		for _, p := range c.Ports {
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				continue
			}
			if p.ContainerPort > 0 && !slices.Contains(ports, int(p.ContainerPort)) {
				ports = append(ports, int(p.ContainerPort))
			}
		}
	}
	for _, c := range spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	for _, c := range spec.Containers {
		add(c)
	}
	slices.Sort(ports)
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// buildPatch turns the rendered fragment into JSON patch operations against
// the pod: linkerd-init after the pod's init containers (or, with a native
// sidecar proxy, linkerd-init and the proxy before them, so that the other
// init containers are meshed), the proxy first among the containers (its
// postStart hook holds the others until it is ready), the volumes appended,
// and the annotations and labels set.
func buildPatch(w *Workload, f *fragment) Patch {
	var p Patch
	native := slices.ContainsFunc(f.InitContainers, func(c map[string]any) bool {
		return c["name"] == k8s.ProxyContainerName
	})
	spec := w.Spec
	switch {
	case len(f.InitContainers) == 0:
	case len(spec.InitContainers) == 0:
		p = append(p, add("/spec/initContainers", toAnySlice(f.InitContainers)))
	case native:
		for i, c := range f.InitContainers {
			p = append(p, add("/spec/initContainers/"+strconv.Itoa(i), c))
		}
	default:
		for _, c := range f.InitContainers {
			p = append(p, add("/spec/initContainers/-", c))
		}
	}
	if len(f.Containers) > 0 {
		if len(spec.Containers) == 0 {
			p = append(p, add("/spec/containers", toAnySlice(f.Containers)))
		} else {
			for i, c := range f.Containers {
				p = append(p, add("/spec/containers/"+strconv.Itoa(i), c))
			}
		}
	}
	if len(f.Volumes) > 0 {
		if len(spec.Volumes) == 0 {
			p = append(p, add("/spec/volumes", toAnySlice(f.Volumes)))
		} else {
			for _, v := range f.Volumes {
				p = append(p, add("/spec/volumes/-", v))
			}
		}
	}
	p = append(p, mapPatch("/metadata/annotations", w.Meta.Annotations, f.Metadata.Annotations)...)
	p = append(p, mapPatch("/metadata/labels", w.Meta.Labels, f.Metadata.Labels)...)
	return p
}

// mapPatch sets keys of a string map: the whole map when the pod has none.
func mapPatch(path string, existing, set map[string]string) Patch {
	if len(set) == 0 {
		return nil
	}
	if len(existing) == 0 {
		m := make(map[string]any, len(set))
		for k, v := range set {
			m[k] = v
		}
		return Patch{add(path, m)}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	p := make(Patch, 0, len(keys))
	for _, k := range keys {
		p = append(p, add(path+"/"+EscapePointerToken(k), set[k]))
	}
	return p
}

func toAnySlice(items []map[string]any) []any {
	out := make([]any, len(items))
	for i, x := range items {
		out[i] = x
	}
	return out
}
