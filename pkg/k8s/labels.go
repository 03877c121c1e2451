// Package k8s holds the Kubernetes names Linkerd uses (labels, annotations,
// container and environment variable names) and small helpers to read them
// from Kubernetes objects: port lists with ranges, the proxy container, the
// owner of a pod.
//
// The names are Linkerd's public interface: manifests, injected pods and
// existing tooling depend on them, so they must not change.
package k8s

const (
	// Prefix is the domain of Linkerd's top-level labels and annotations.
	Prefix = "linkerd.io"
	// ConfigPrefix is the domain of the proxy configuration annotations.
	ConfigPrefix = "config.linkerd.io"
	// ConfigAlphaPrefix is the domain of experimental proxy configuration annotations.
	ConfigAlphaPrefix = "config.alpha.linkerd.io"
)

// Top-level annotations.
const (
	// ProxyInjectAnnotation controls injection on a pod (template) or a
	// namespace: one of the ProxyInject* values.
	ProxyInjectAnnotation = Prefix + "/inject"
	// CreatedByAnnotation names the tool that injected the proxy
	// (e.g. "linkerd/cli edge-26.8.3").
	CreatedByAnnotation = Prefix + "/created-by"
	// ProxyVersionAnnotation is the version of the injected proxy.
	ProxyVersionAnnotation = Prefix + "/proxy-version"
	// TrustRootSHA256Annotation is the SHA-256 of the trust anchors the proxy was given.
	TrustRootSHA256Annotation = Prefix + "/trust-root-sha256"
)

// Values of ProxyInjectAnnotation.
const (
	ProxyInjectEnabled  = "enabled"
	ProxyInjectDisabled = "disabled"
	// ProxyInjectIngress injects the proxy in ingress mode.
	ProxyInjectIngress = "ingress"
)

// Labels written by the injector.
const (
	// ControllerNSLabel is set on meshed pods to the namespace of the control
	// plane that manages their proxy. The destination service only gives an
	// identity to endpoints whose value equals its own namespace.
	ControllerNSLabel = Prefix + "/control-plane-ns"
	// ControllerComponentLabel names the control-plane component of a
	// control-plane pod (e.g. "destination").
	ControllerComponentLabel = Prefix + "/control-plane-component"
	// WorkloadNamespaceLabel is the namespace of the injected workload.
	WorkloadNamespaceLabel = Prefix + "/workload-ns"

	// ProxyDeploymentLabel and the following name the workload that owns an
	// injected pod; the value is the workload's name.
	ProxyDeploymentLabel            = Prefix + "/proxy-deployment"
	ProxyReplicaSetLabel            = Prefix + "/proxy-replicaset"
	ProxyStatefulSetLabel           = Prefix + "/proxy-statefulset"
	ProxyDaemonSetLabel             = Prefix + "/proxy-daemonset"
	ProxyJobLabel                   = Prefix + "/proxy-job"
	ProxyCronJobLabel               = Prefix + "/proxy-cronjob"
	ProxyReplicationControllerLabel = Prefix + "/proxy-replicationcontroller"
)

// Proxy configuration annotations (config.linkerd.io/*) read by the control
// plane. The injector reads many more; they are defined with the injector.
const (
	// ProxyOpaquePortsAnnotation lists ports (numbers, ranges "a-b" and, on
	// pods, container port names) whose traffic is opaque TCP: no protocol
	// detection. On a pod it names the pod's ports; on a Service, the
	// Service's ports. When absent, DefaultOpaquePorts apply.
	ProxyOpaquePortsAnnotation = ConfigPrefix + "/opaque-ports"
	// ProxyIgnoreInboundPortsAnnotation lists ports (and ranges) whose inbound
	// traffic bypasses the proxy; such ports are not meshed.
	ProxyIgnoreInboundPortsAnnotation = ConfigPrefix + "/skip-inbound-ports"
	// ProxyIgnoreOutboundPortsAnnotation lists ports (and ranges) whose
	// outbound traffic bypasses the proxy.
	ProxyIgnoreOutboundPortsAnnotation = ConfigPrefix + "/skip-outbound-ports"
	// ProxyIgnoreSubnetsAnnotation lists CIDRs whose traffic bypasses the proxy.
	ProxyIgnoreSubnetsAnnotation = ConfigPrefix + "/skip-subnets"
	// ProxyInboundPortAnnotation overrides the proxy's inbound port (4143).
	ProxyInboundPortAnnotation = ConfigPrefix + "/inbound-port"
	// ProxyOutboundPortAnnotation overrides the proxy's outbound port (4140).
	ProxyOutboundPortAnnotation = ConfigPrefix + "/outbound-port"
	// ProxyAdminPortAnnotation overrides the proxy's admin port (4191).
	ProxyAdminPortAnnotation = ConfigPrefix + "/admin-port"
	// ProxyControlPortAnnotation overrides the proxy's control port (4190).
	ProxyControlPortAnnotation = ConfigPrefix + "/control-port"
	// ProxyPodInboundPortsAnnotation overrides the pod's inbound port list.
	ProxyPodInboundPortsAnnotation = ConfigPrefix + "/pod-inbound-ports"
	// ProxyRequireIdentityOnInboundPortsAnnotation lists ports that only accept meshed TLS.
	ProxyRequireIdentityOnInboundPortsAnnotation = ConfigPrefix + "/proxy-require-identity-inbound-ports"
	// ProxyDefaultInboundPolicyAnnotation sets the proxy's default inbound policy.
	ProxyDefaultInboundPolicyAnnotation = ConfigPrefix + "/default-inbound-policy"
)

// DefaultOpaquePorts are the ports treated as opaque when neither the pod
// nor the Service says otherwise: SMTP, MySQL, Galera, PostgreSQL, Redis,
// Elasticsearch, memcached.
const DefaultOpaquePorts = "25,587,3306,4444,5432,6379,9300,11211"

// Containers and their environment.
const (
	// ProxyContainerName is the name of the injected proxy container (a
	// regular container, or a native sidecar init container).
	ProxyContainerName = "linkerd-proxy"
	// InitContainerName is the name of the proxy-init container.
	InitContainerName = "linkerd-init"
	// DefaultProxyInboundPort is the proxy's inbound port when
	// LINKERD2_PROXY_INBOUND_LISTEN_ADDR is absent or invalid.
	DefaultProxyInboundPort = 4143
	// DefaultProxyAdminPort is the proxy's admin port (/metrics, /ready)
	// unless ProxyAdminPortAnnotation says otherwise.
	DefaultProxyAdminPort = 4191
)

// Kubernetes' own names that the control plane reads.
const (
	// PodTemplateHashLabel is set by the Deployment controller on the
	// ReplicaSets it creates and their pods; a ReplicaSet's name is its
	// Deployment's name followed by "-" and this hash.
	PodTemplateHashLabel = "pod-template-hash"
	// ServiceNameLabel links an EndpointSlice to its Service.
	ServiceNameLabel = "kubernetes.io/service-name"
)
