// Package testnet is a test harness that models Kubernetes pods as Linux
// network namespaces, so integration tests and benchmarks can run a sidecar
// proxy with its iptables rules exactly as it would run in a cluster.
//
// A [Network] is a "switch" namespace holding a Linux bridge and a fresh /24
// subnet. Each [Pod] is a namespace with a loopback interface and an eth0
// veth whose peer is attached to the bridge. Processes run inside a pod with
// [Pod.Command] or [Pod.Start]; the test process itself can open sockets
// inside a pod with [Pod.DialContext] and [Pod.Listen], so that its traffic
// traverses the pod's iptables rules like any application in the pod would.
//
// Everything is torn down with t.Cleanup: processes first, then namespaces.
// Namespace names start with "l5dt-<id>-", and namespaces left behind by a
// crashed run are removed by the next [New] once nothing uses them.
//
// The harness needs Linux, root (CAP_SYS_ADMIN and CAP_NET_ADMIN), iproute2
// and nsenter. [Require] skips a test when they are missing, or fails it when
// the environment variable CI is "true".
package testnet
