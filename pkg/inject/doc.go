// Package inject decides whether and how the Linkerd proxy is added to a
// pod, for the proxy injector (an admission webhook answering with a JSON
// patch) and for `linkerd inject --manual` (the same patch applied to a
// workload's pod template).
//
// The containers, volumes and metadata themselves are defined once, as Helm
// templates in the partials library chart, and rendered here through the
// patch chart (package charts) with the installation's values (linkerd-config)
// coalesced with per-pod values computed from the pod and from its
// config.linkerd.io/* annotations, the pod's winning over its namespace's.
//
// Pods the injector leaves alone get a Skip with Linkerd's reason
// (host_network_enabled, sidecar_already_exists, ...).
package inject
