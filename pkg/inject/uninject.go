package inject

import "github.com/linkerd-go/linkerd/pkg/k8s"

// Volumes the injector adds (partials.proxy.volumes).
var injectedVolumes = map[string]bool{
	"linkerd-identity-end-entity":     true,
	"linkerd-identity-token":          true,
	"linkerd-proxy-init-xtables-lock": true,
}

// Annotations the injector (and `linkerd inject`) writes.
var injectedAnnotations = map[string]bool{
	k8s.ProxyInjectAnnotation:     true,
	k8s.CreatedByAnnotation:       true,
	k8s.ProxyVersionAnnotation:    true,
	k8s.TrustRootSHA256Annotation: true,
}

// Uninject removes what the injector adds from a pod or pod template,
// decoded into generic maps ({"metadata": ..., "spec": ...}): the proxy and
// linkerd-init containers, their volumes, and Linkerd's annotations
// (including linkerd.io/inject) and labels. The config.linkerd.io/*
// annotations stay. It reports whether anything was removed.
func Uninject(template map[string]any) bool {
	changed := false
	if spec, ok := template["spec"].(map[string]any); ok {
		for _, key := range []string{"initContainers", "containers"} {
			changed = filterNamed(spec, key, func(name string) bool {
				return name == k8s.ProxyContainerName || name == k8s.InitContainerName
			}) || changed
		}
		changed = filterNamed(spec, "volumes", func(name string) bool { return injectedVolumes[name] }) || changed
	}
	if meta, ok := template["metadata"].(map[string]any); ok {
		changed = deleteKeys(meta, "annotations", func(k string) bool { return injectedAnnotations[k] }) || changed
		changed = deleteKeys(meta, "labels", isInjectedLabel) || changed
		if changed && len(meta) == 0 {
			delete(template, "metadata")
		}
	}
	return changed
}

func isInjectedLabel(k string) bool {
	if k == k8s.ControllerNSLabel || k == k8s.WorkloadNamespaceLabel {
		return true
	}
	for _, l := range workloadLabels {
		if k == l {
			return true
		}
	}
	return false
}

// filterNamed drops the items of the list m[key] whose "name" matches;
// an emptied list is removed.
func filterNamed(m map[string]any, key string, drop func(string) bool) bool {
	items, ok := m[key].([]any)
	if !ok {
		return false
	}
	kept := items[:0:0]
	for _, item := range items {
		if obj, ok := item.(map[string]any); ok {
			if name, _ := obj["name"].(string); drop(name) {
				continue
			}
		}
		kept = append(kept, item)
	}
	if len(kept) == len(items) {
		return false
	}
	if len(kept) == 0 && key != "containers" {
		delete(m, key)
	} else {
		m[key] = kept
	}
	return true
}

// deleteKeys removes matching keys from the string map m[key]; an emptied
// map is removed.
func deleteKeys(m map[string]any, key string, drop func(string) bool) bool {
	obj, ok := m[key].(map[string]any)
	if !ok {
		return false
	}
	changed := false
	for k := range obj {
		if drop(k) {
			delete(obj, k)
			changed = true
		}
	}
	if changed && len(obj) == 0 {
		delete(m, key)
	}
	return changed
}

// IsInjected reports whether a pod (template) in generic form has the proxy.
func IsInjected(template map[string]any) bool {
	spec, _ := template["spec"].(map[string]any)
	for _, key := range []string{"initContainers", "containers"} {
		items, _ := spec[key].([]any)
		for _, item := range items {
			if obj, ok := item.(map[string]any); ok && obj["name"] == k8s.ProxyContainerName {
				return true
			}
		}
	}
	return false
}
