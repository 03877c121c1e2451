package healthcheck

import corev1 "k8s.io/api/core/v1"

// What extensions' checks (viz) share with the core ones.

// KubernetesAPICategories are the checks every run starts with: the
// cluster is reachable and recent enough.
func KubernetesAPICategories() []Category {
	return []Category{kubernetesAPICategory(), kubernetesVersionCategory()}
}

// PodReady reports whether every container of the pod is ready, and if
// not, why.
func PodReady(pod *corev1.Pod) (bool, string) { return podReady(pod) }

// ProxyReady reports whether the pod's linkerd-proxy container is ready,
// and if not, why.
func ProxyReady(pod *corev1.Pod) (bool, string) { return proxyReady(pod) }

// ProxyVersionsMatch fails listing the meshed pods whose proxy version is
// not want.
func ProxyVersionsMatch(pods []corev1.Pod, want string) error { return proxyVersionsMatch(pods, want) }
