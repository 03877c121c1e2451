package config

import (
	"strings"

	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// knownVars are the LINKERD2_PROXY_* variables that Linkerd's injector sets
// or Linkerd's proxy reads. Those this package does not interpret yet are
// listed so that they are not reported in Config.Unknown.
var knownVars = map[string]bool{}

func init() {
	for _, name := range []string{
		// Interpreted by this package.
		proxyenv.InboundListenAddr, proxyenv.OutboundListenAddrs, proxyenv.OutboundListenAddr,
		proxyenv.AdminListenAddr, proxyenv.ControlListenAddr, proxyenv.TapSvcName,
		proxyenv.InboundOpaquePorts, proxyenv.InboundPorts,
		proxyenv.InboundDetectTimeout, proxyenv.OutboundDetectTimeout,
		proxyenv.InboundConnectTimeout, proxyenv.OutboundConnectTimeout,
		proxyenv.ShutdownEndpointEnabled, proxyenv.ShutdownGracePeriod,
		proxyenv.Log, proxyenv.LogFormat, proxyenv.OutboundH2Upgrade, proxyenv.OutboundH2Connections,

		// Runtime and logging.
		"CORES", "CORES_MIN", "CORES_MAX", "CORES_MAX_RATIO",
		"ACCESS_LOG",

		// Control plane: destination, policy, identity, tap.
		"DESTINATION_SVC_ADDR", "DESTINATION_SVC_NAME", "DESTINATION_CONTEXT",
		"DESTINATION_PROFILE_NETWORKS", "DESTINATION_PROFILE_SUFFIXES",
		"DESTINATION_PROFILE_INITIAL_TIMEOUT",
		"POLICY_SVC_ADDR", "POLICY_SVC_NAME", "POLICY_WORKLOAD", "POLICY_CLUSTER_NETWORKS",
		"IDENTITY_DIR", "IDENTITY_TRUST_ANCHORS", "IDENTITY_TOKEN_FILE", "STATIC_ENDPOINTS",
		"IDENTITY_SVC_ADDR", "IDENTITY_SVC_NAME", "IDENTITY_LOCAL_NAME",
		"IDENTITY_SERVER_ID", "IDENTITY_SERVER_NAME",
		"IDENTITY_MIN_REFRESH", "IDENTITY_MAX_REFRESH", "IDENTITY_DISABLED",
		"CONTROL_STREAM_INITIAL_TIMEOUT", "CONTROL_STREAM_IDLE_TIMEOUT", "CONTROL_STREAM_LIFETIME",

		// Inbound.
		"INBOUND_IPS", "INBOUND_DEFAULT_POLICY",
		"INBOUND_PORTS_REQUIRE_IDENTITY", "INBOUND_PORTS_REQUIRE_TLS",
		"INBOUND_GATEWAY_SUFFIXES", "INBOUND_DISCOVERY_IDLE_TIMEOUT",
		"INBOUND_ACCEPT_KEEPALIVE", "INBOUND_ACCEPT_USER_TIMEOUT",
		"INBOUND_CONNECT_KEEPALIVE", "INBOUND_CONNECT_USER_TIMEOUT",
		"INBOUND_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT",
		"INBOUND_HTTP_FAILFAST_TIMEOUT", "INBOUND_HTTP_QUEUE_CAPACITY",
		"INBOUND_MAX_IN_FLIGHT", "INBOUND_METRICS_AUTHORITY_LABELS",
		"INBOUND_TCP_LISTEN_BACKLOG",
		"MAX_IDLE_CONNS_PER_ENDPOINT",

		// Outbound.
		"INGRESS_MODE",
		"OUTBOUND_DISCOVERY_IDLE_TIMEOUT",
		"OUTBOUND_ACCEPT_KEEPALIVE", "OUTBOUND_ACCEPT_USER_TIMEOUT",
		"OUTBOUND_CONNECT_KEEPALIVE", "OUTBOUND_CONNECT_USER_TIMEOUT",
		"OUTBOUND_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT",
		"OUTBOUND_HTTP_FAILFAST_TIMEOUT", "OUTBOUND_HTTP_QUEUE_CAPACITY",
		"OUTBOUND_TCP_FAILFAST_TIMEOUT", "OUTBOUND_TCP_QUEUE_CAPACITY",
		"OUTBOUND_MAX_IN_FLIGHT", "OUTBOUND_MAX_IDLE_CONNS_PER_ENDPOINT",
		"OUTBOUND_METRICS_HOSTNAME_LABELS", "OUTBOUND_DISABLE_INFORMATIONAL_HEADERS",
		"OUTBOUND_TCP_LISTEN_BACKLOG",

		// Metrics, DNS, HTTP/2.
		"METRICS_RETAIN_IDLE",
		"RESOLV_CONF", "DNS_MIN_TTL", "DNS_MAX_TTL",
		"HTTP2_INITIAL_STREAM_WINDOW_SIZE", "HTTP2_INITIAL_CONNECTION_WINDOW_SIZE",
	} {
		if !strings.HasPrefix(name, proxyenv.Prefix) {
			name = proxyenv.Prefix + name
		}
		knownVars[name] = true
	}
}

// knownPrefixes cover families of variables named after a common base.
var knownPrefixes = []string{
	proxyenv.Prefix + "TRACE_",                 // tracing: _PROTOCOL, _SERVICE_NAME, _COLLECTOR_SVC_ADDR, ...
	proxyenv.Prefix + "IDENTITY_SPIRE",         // SPIRE identity: _SOCKET and backoff settings
	proxyenv.Prefix + "INBOUND_SERVER_HTTP2_",  // _KEEP_ALIVE_INTERVAL, _KEEP_ALIVE_TIMEOUT, ...
	proxyenv.Prefix + "OUTBOUND_SERVER_HTTP2_", // same for the outbound server
}

// knownSuffixes cover settings derived from a base name, such as
// LINKERD2_PROXY_OUTBOUND_CONNECT_EXP_BACKOFF_MIN.
var knownSuffixes = []string{
	"_EXP_BACKOFF_MIN", "_EXP_BACKOFF_MAX", "_EXP_BACKOFF_JITTER",
}

// IsKnown reports whether name is a LINKERD2_PROXY_* variable that Linkerd
// sets or reads, whether or not this proxy implements it.
func IsKnown(name string) bool {
	if knownVars[name] {
		return true
	}
	if !strings.HasPrefix(name, proxyenv.Prefix) {
		return false
	}
	for _, p := range knownPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, s := range knownSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}
