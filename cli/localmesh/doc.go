// Package localmesh runs the mesh on one machine without Kubernetes: a
// "switch" network namespace holds a bridge, and every workload is a pod
// namespace on it with linkerd-init's iptables rules, a linkerd-proxy (uid
// 2102) with an identity from the local identity service, and the
// application. The control plane (identity with local tokens, destination
// over a directory of Kubernetes YAML, the store) runs in such pods too.
//
// Processes are started detached (their own session, output to log files in
// the state directory) so that they outlive the CLI; they are tracked by pid
// and start time in a JSON state file, which owns them: Down stops each by
// pid and deletes the namespaces (and with them every iptables rule).
//
// A workload's application is not started by the CLI but by the pod's
// supervisor, a detached `linkerd local supervise` process (see Supervise):
// it restarts the application when it exits (restartPolicy Always, with
// backoff and a restart count that Status shows), marks the pod's endpoint
// not ready in the store while it is down, so destination pushes a remove
// to the proxies, and ready again once it listens on its port.
//
// The store is the source of truth for Services: Run writes a file per
// Service it creates (Service, EndpointSlice, Pods); Apply adds users'
// manifests next to them, giving Services without a cluster IP one from the
// Service range. Name resolution is a per-pod hosts file bind-mounted over
// /etc/hosts in the application's private mount namespace, not a DNS
// server: it lists every Service of the store by its full
// (name.ns.svc.cluster.local), name.ns.svc, name.ns and, in the pod's own
// namespace, short name, and is rewritten in place (same inode, so the bind
// mount sees it) by every Run, Apply and supervisor update. Files copied
// into the store by hand reach destination but the hosts files only at the
// next of those; use `linkerd local apply`. A route for the Service range
// sends connections to cluster IPs out of the pod, where iptables hands
// them to the proxy.
//
// Everything needs root with CAP_NET_ADMIN and CAP_SYS_ADMIN (network
// namespaces, iptables, mounts). There is no unprivileged mode: without
// them every operation returns ErrNotRoot, one line, before changing
// anything.
package localmesh
