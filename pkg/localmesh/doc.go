// Package localmesh runs the mesh on one machine without Kubernetes: a
// "switch" network namespace holds a bridge, and every workload is a pod
// namespace on it with linkerd-init's iptables rules, a linkerd-proxy (uid
// 2102) with an identity from the local identity service, and the
// application. The control plane (identity with local tokens, destination
// over a directory of Kubernetes YAML) runs in two such pods.
//
// Processes are started detached (their own session, output to log files in
// the state directory) so that they outlive the CLI; they are tracked by pid
// and start time in a JSON state file. Workloads reach each other by Service
// name through a per-pod hosts file bind-mounted over /etc/hosts in the
// application's private mount namespace, and a route for the virtual
// Service range that hands their connections to the proxy.
//
// Everything needs root (network namespaces and iptables); without it every
// operation returns ErrNotRoot before changing anything.
package localmesh
