// Package proxyenv names the proxy's LINKERD2_PROXY_* environment variables
// and parses the value syntaxes they share with annotations (durations, log
// filters). It is a leaf: the proxy, the injector and the local mesh import it,
// so that each name is written once.
package proxyenv

// Prefix is the prefix shared by all proxy environment variables.
const Prefix = "LINKERD2_PROXY_"

// Names of the variables the proxy interprets (proxy/config).
const (
	InboundListenAddr       = "LINKERD2_PROXY_INBOUND_LISTEN_ADDR"
	OutboundListenAddrs     = "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS"
	OutboundListenAddr      = "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR" // deprecated singular form
	AdminListenAddr         = "LINKERD2_PROXY_ADMIN_LISTEN_ADDR"
	ControlListenAddr       = "LINKERD2_PROXY_CONTROL_LISTEN_ADDR"
	InboundOpaquePorts      = "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION"
	InboundPorts            = "LINKERD2_PROXY_INBOUND_PORTS"
	InboundDetectTimeout    = "LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT"
	OutboundDetectTimeout   = "LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT"
	InboundConnectTimeout   = "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT"
	OutboundConnectTimeout  = "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT"
	ShutdownEndpointEnabled = "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED"
	ShutdownGracePeriod     = "LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD"
	Log                     = "LINKERD2_PROXY_LOG"
	LogFormat               = "LINKERD2_PROXY_LOG_FORMAT"
	IngressMode             = "LINKERD2_PROXY_INGRESS_MODE"
	// TapSvcName is the identity of the tap service, the only client the
	// tap API on the control port serves; unset, tap is off.
	TapSvcName = "LINKERD2_PROXY_TAP_SVC_NAME"
	// StaticEndpoints is this proxy's own addition: meshed endpoints known
	// without the destination service (see discovery.ParseStatic).
	StaticEndpoints = "LINKERD2_PROXY_STATIC_ENDPOINTS"
	// OutboundH2Upgrade is this proxy's own addition: "false" keeps
	// HTTP/1.1 between meshed proxies even where discovery says the peer
	// accepts HTTP/2 (the destination service's -enable-h2-upgrade decides
	// for the whole mesh).
	OutboundH2Upgrade = "LINKERD2_PROXY_OUTBOUND_H2_UPGRADE"
	// OutboundH2Connections is this proxy's own addition: how many
	// HTTP/2 connections a meshed peer gets at most (1 by default), more
	// being opened only while all of them have requests in flight.
	OutboundH2Connections = "LINKERD2_PROXY_OUTBOUND_H2_CONNECTIONS"
)

// Identity variables.
const (
	IdentityDisabled     = "LINKERD2_PROXY_IDENTITY_DISABLED"
	IdentityDir          = "LINKERD2_PROXY_IDENTITY_DIR"
	IdentitySvcAddr      = "LINKERD2_PROXY_IDENTITY_SVC_ADDR"
	IdentitySvcName      = "LINKERD2_PROXY_IDENTITY_SVC_NAME"
	IdentityLocalName    = "LINKERD2_PROXY_IDENTITY_LOCAL_NAME"
	IdentityTokenFile    = "LINKERD2_PROXY_IDENTITY_TOKEN_FILE"
	IdentityTrustAnchors = "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"
	IdentityMinRefresh   = "LINKERD2_PROXY_IDENTITY_MIN_REFRESH"
	IdentityMaxRefresh   = "LINKERD2_PROXY_IDENTITY_MAX_REFRESH"
)

// Destination variables.
const (
	DestinationSvcAddr         = "LINKERD2_PROXY_DESTINATION_SVC_ADDR"
	DestinationSvcName         = "LINKERD2_PROXY_DESTINATION_SVC_NAME"
	DestinationContext         = "LINKERD2_PROXY_DESTINATION_CONTEXT"
	DestinationProfileSuffixes = "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES"
	DestinationProfileNetworks = "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS"
	OutboundDiscoveryIdle      = "LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT"
)

// Policy variables.
const (
	PolicySvcAddr         = "LINKERD2_PROXY_POLICY_SVC_ADDR"
	PolicySvcName         = "LINKERD2_PROXY_POLICY_SVC_NAME"
	PolicyWorkload        = "LINKERD2_PROXY_POLICY_WORKLOAD"
	PolicyClusterNetworks = "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS"
	InboundDefaultPolicy  = "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"
	// InboundPortsRequireIdentity lists ports that accept only meshed clients, whatever the policy.
	InboundPortsRequireIdentity = "LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY"
)
