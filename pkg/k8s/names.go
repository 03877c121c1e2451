package k8s

// Names of the control plane's Kubernetes resources, as `linkerd install`
// renders them. The chart (charts/linkerd-control-plane), the CLI (install,
// check, inject, version) and the controllers all use these.
const (
	// ControlPlaneNamespace is the default namespace of the control plane.
	ControlPlaneNamespace = "linkerd"

	// ConfigMapName holds the installation's full Helm values under ConfigValuesKey.
	ConfigMapName   = "linkerd-config"
	ConfigValuesKey = "values"
	// TrustRootsConfigMapName holds the trust anchors PEM under TrustRootsKey.
	TrustRootsConfigMapName = "linkerd-identity-trust-roots"
	TrustRootsKey           = "ca-bundle.crt"
	// IssuerSecretName holds the identity issuer certificate and key
	// (keys "crt.pem"/"key.pem", or "tls.crt"/"tls.key" for kubernetes.io/tls
	// secrets managed outside Linkerd).
	IssuerSecretName = "linkerd-identity-issuer"

	// Control-plane deployments and their component label values
	// (ControllerComponentLabel).
	IdentityDeploymentName      = "linkerd-identity"
	DestinationDeploymentName   = "linkerd-destination"
	ProxyInjectorDeploymentName = "linkerd-proxy-injector"
	IdentityComponent           = "identity"
	DestinationComponent        = "destination"
	ProxyInjectorComponent      = "proxy-injector"

	// The control plane's gRPC ports: destination's (discovery, profiles)
	// and the policy controller's, both in the destination pod, as Linkerd's.
	DestinationGRPCPort = 8086
	PolicyGRPCPort      = 8090

	// Services the proxies and the API server reach.
	IdentityHeadlessServiceName    = "linkerd-identity-headless"
	DestinationHeadlessServiceName = "linkerd-dst-headless"
	ProxyInjectorServiceName       = "linkerd-proxy-injector"
	SPValidatorServiceName         = "linkerd-sp-validator"
	PolicyValidatorServiceName     = "linkerd-policy-validator"

	// Admission webhook configurations.
	ProxyInjectorWebhookConfigName   = "linkerd-proxy-injector-webhook-config"
	SPValidatorWebhookConfigName     = "linkerd-sp-validator-webhook-config"
	PolicyValidatorWebhookConfigName = "linkerd-policy-validator-webhook-config"

	// Webhook serving certificates (kubernetes.io/tls secrets).
	ProxyInjectorTLSSecretName   = "linkerd-proxy-injector-k8s-tls"
	SPValidatorTLSSecretName     = "linkerd-sp-validator-k8s-tls"
	PolicyValidatorTLSSecretName = "linkerd-policy-validator-k8s-tls"

	// IdentityTokenAudience is the audience of the projected ServiceAccount
	// token a proxy presents to identity.
	IdentityTokenAudience = "identity.l5d.io"

	// Label on every resource of the control plane, and on the namespace.
	ControlPlaneNSLabel   = ControllerNSLabel
	LinkerdNamespaceLabel = Prefix + "/is-control-plane"
)

// ClusterRoleName is the name of a control-plane component's ClusterRole and
// ClusterRoleBinding: "linkerd-<control-plane namespace>-<component>", so two
// control planes in different namespaces do not collide.
func ClusterRoleName(controlPlaneNS, component string) string {
	return "linkerd-" + controlPlaneNS + "-" + component
}

// Further names of the control plane's resources.
const (
	// IdentityServiceName and DestinationServiceName are the control
	// plane's ClusterIP Services (the headless ones are above).
	IdentityServiceName    = "linkerd-identity"
	DestinationServiceName = "linkerd-dst"

	// Keys of the identity issuer Secret in the linkerd.io/tls scheme (the
	// chart's own Secret); a kubernetes.io/tls Secret has corev1.TLSCertKey
	// and corev1.TLSPrivateKeyKey.
	IssuerCertKey = "crt.pem"
	IssuerKeyKey  = "key.pem"

	// AdmissionWebhooksLabel set to "disabled" on a namespace keeps the
	// admission webhooks away from its pods (set on the control plane's).
	AdmissionWebhooksLabel = ConfigPrefix + "/admission-webhooks"
)
