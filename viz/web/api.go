// Package web is linkerd viz's dashboard server: it serves the dashboard's
// built assets (embedded from dist/, built from app/ by `make web`) and a
// small JSON API under /api/ that the dashboard polls, answered from the
// metrics API.
package web

import (
	"context"
	"time"
)

// Resource names a Kubernetes-style resource: a namespace, a workload
// (deployment, statefulset, daemonset, job), a pod or an authority.
type Resource struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// Stat is one row of a stat summary: the golden metrics of a resource
// over the query's time window.
type Stat struct {
	Resource    Resource `json:"resource"`
	MeshedPods  int      `json:"meshedPods"`
	RunningPods int      `json:"runningPods"`
	FailedPods  int      `json:"failedPods,omitempty"`
	// SuccessRate is in [0, 1]; nil when the resource served no requests
	// in the window (shown as "-", never as 0%).
	SuccessRate *float64 `json:"successRate"`
	RPS         float64  `json:"rps"`
	// Latencies in milliseconds; nil without requests.
	LatencyP50 *float64 `json:"latencyP50"`
	LatencyP95 *float64 `json:"latencyP95"`
	LatencyP99 *float64 `json:"latencyP99"`
	// TCP connections open now.
	TCPConnections float64 `json:"tcpConnections"`
}

// StatQuery asks for the stat summary of every resource of Kind in
// Namespace ("" for all namespaces), or only of Name when set, or only of
// the pods of workload Owner when set (Kind "pod").
type StatQuery struct {
	Kind      string
	Namespace string
	Name      string
	Owner     *Resource
	Window    time.Duration
}

// Edge is a connection between two meshed or unmeshed resources as the
// metrics show it: who called whom, and with which identities.
type Edge struct {
	Src      Resource `json:"src"`
	Dst      Resource `json:"dst"`
	ClientID string   `json:"clientId,omitempty"`
	ServerID string   `json:"serverId,omitempty"`
	// NoTLSReason says why the edge is not mTLS ("" when it is).
	NoTLSReason string `json:"noTlsReason,omitempty"`
}

// MTLS reports whether the edge's traffic is mutually authenticated TLS.
func (e Edge) MTLS() bool { return e.NoTLSReason == "" && e.ServerID != "" }

// Route is one row of top routes: a method and path (or a ServiceProfile
// route) a workload serves or calls, with its golden metrics.
type Route struct {
	Route       string   `json:"route"`
	Authority   string   `json:"authority,omitempty"`
	SuccessRate *float64 `json:"successRate"`
	RPS         float64  `json:"rps"`
	LatencyP50  *float64 `json:"latencyP50"`
	LatencyP95  *float64 `json:"latencyP95"`
	LatencyP99  *float64 `json:"latencyP99"`
}

// RouteQuery asks for the routes a workload serves (inbound), or those it
// calls when Outbound is set.
type RouteQuery struct {
	Resource Resource
	Outbound bool
	Window   time.Duration
}

// MetricsClient is what the dashboard needs of the metrics API.
type MetricsClient interface {
	StatSummary(ctx context.Context, q StatQuery) ([]Stat, error)
	// Edges lists the edges between resources of kind in namespace.
	Edges(ctx context.Context, namespace, kind string, window time.Duration) ([]Edge, error)
	TopRoutes(ctx context.Context, q RouteQuery) ([]Route, error)
}
