package inject

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
)

// Configuration annotations the injector reads, on the pod (template) or its
// namespace, besides those in package k8s (opaque and skipped ports,
// proxy ports, pod-inbound-ports).
const (
	ProxyImageAnnotation                                = k8s.ConfigPrefix + "/proxy-image"
	ProxyVersionOverrideAnnotation                      = k8s.ConfigPrefix + "/proxy-version"
	ProxyImagePullPolicyAnnotation                      = k8s.ConfigPrefix + "/image-pull-policy"
	ProxyCPURequestAnnotation                           = k8s.ConfigPrefix + "/proxy-cpu-request"
	ProxyCPULimitAnnotation                             = k8s.ConfigPrefix + "/proxy-cpu-limit"
	ProxyMemoryRequestAnnotation                        = k8s.ConfigPrefix + "/proxy-memory-request"
	ProxyMemoryLimitAnnotation                          = k8s.ConfigPrefix + "/proxy-memory-limit"
	ProxyEphemeralStorageRequestAnnotation              = k8s.ConfigPrefix + "/proxy-ephemeral-storage-request"
	ProxyEphemeralStorageLimitAnnotation                = k8s.ConfigPrefix + "/proxy-ephemeral-storage-limit"
	ProxyUIDAnnotation                                  = k8s.ConfigPrefix + "/proxy-uid"
	ProxyGIDAnnotation                                  = k8s.ConfigPrefix + "/proxy-gid"
	ProxyLogLevelAnnotation                             = k8s.ConfigPrefix + "/proxy-log-level"
	ProxyLogFormatAnnotation                            = k8s.ConfigPrefix + "/proxy-log-format"
	ProxyLogHTTPHeadersAnnotation                       = k8s.ConfigPrefix + "/proxy-log-http-headers"
	ProxyAdminShutdownAnnotation                        = k8s.ConfigPrefix + "/proxy-admin-shutdown"
	ProxyEnableExternalProfilesAnnotation               = k8s.ConfigPrefix + "/enable-external-profiles"
	ProxyOutboundConnectTimeoutAnnotation               = k8s.ConfigPrefix + "/proxy-outbound-connect-timeout"
	ProxyInboundConnectTimeoutAnnotation                = k8s.ConfigPrefix + "/proxy-inbound-connect-timeout"
	ProxyOutboundDiscoveryCacheUnusedTimeoutAnnotation  = k8s.ConfigPrefix + "/proxy-outbound-discovery-cache-unused-timeout"
	ProxyDisableOutboundProtocolDetectTimeoutAnnotation = k8s.ConfigPrefix + "/proxy-disable-outbound-protocol-detect-timeout"
	ProxyDisableInboundProtocolDetectTimeoutAnnotation  = k8s.ConfigPrefix + "/proxy-disable-inbound-protocol-detect-timeout"
	ProxyAwaitAnnotation                                = k8s.ConfigPrefix + "/proxy-await"
	ProxyShutdownGracePeriodAnnotation                  = k8s.ConfigPrefix + "/shutdown-grace-period"
	ProxyEnableNativeSidecarAnnotation                  = k8s.ConfigPrefix + "/proxy-enable-native-sidecar"
	ProxyAdditionalEnvAnnotation                        = k8s.ConfigPrefix + "/proxy-additional-env"
	CloseWaitTimeoutAnnotation                          = k8s.ConfigPrefix + "/close-wait-timeout"
	ProxyWaitBeforeExitSecondsAnnotation                = k8s.ConfigAlphaPrefix + "/proxy-wait-before-exit-seconds"

	// Deprecated spellings of ProxyEnableNativeSidecarAnnotation, still honoured.
	proxyEnableNativeSidecarAlpha = k8s.ConfigAlphaPrefix + "/proxy-enable-native-sidecar"
	proxyEnableNativeSidecarBeta  = "config.beta.linkerd.io/proxy-enable-native-sidecar"
)

// Values of the enabled/disabled annotations (proxy-await, proxy-admin-shutdown).
const (
	Enabled  = "enabled"
	Disabled = "disabled"
)

// setting maps configuration annotations to one chart value. names are
// tried in order on the pod, then on the namespace; the first present wins.
type setting struct {
	names []string
	path  string // dotted path in the chart values, e.g. "proxy.logLevel"
	parse func(value string, pod *corev1.PodSpec) (any, error)
}

// settings lists every configuration annotation the injector honours.
// Linkerd annotations for features our proxy does not have (debug sidecar,
// access log, gateway, CPU ratio, hostname metric labels, inbound discovery
// timeout) are not here: they are ignored. The ones found on the namespace
// only are also written on the pod (PodValues).
var settings = []setting{
	{names: []string{ProxyImageAnnotation}, path: "proxy.image.name", parse: parseString},
	{names: []string{ProxyVersionOverrideAnnotation}, path: "proxy.image.version", parse: parseString},
	{names: []string{ProxyImagePullPolicyAnnotation}, path: "proxy.image.pullPolicy", parse: parseEnum("Always", "IfNotPresent", "Never")},
	{names: []string{k8s.ProxyAdminPortAnnotation}, path: "proxy.ports.admin", parse: parsePort},
	{names: []string{k8s.ProxyControlPortAnnotation}, path: "proxy.ports.control", parse: parsePort},
	{names: []string{k8s.ProxyInboundPortAnnotation}, path: "proxy.ports.inbound", parse: parsePort},
	{names: []string{k8s.ProxyOutboundPortAnnotation}, path: "proxy.ports.outbound", parse: parsePort},
	{names: []string{k8s.ProxyPodInboundPortsAnnotation}, path: "proxy.podInboundPorts", parse: parsePortList},
	{names: []string{k8s.ProxyOpaquePortsAnnotation}, path: "proxy.opaquePorts", parse: parseNamedPortList},
	{names: []string{k8s.ProxyIgnoreInboundPortsAnnotation}, path: "proxyInit.ignoreInboundPorts", parse: parsePortList},
	{names: []string{k8s.ProxyIgnoreOutboundPortsAnnotation}, path: "proxyInit.ignoreOutboundPorts", parse: parsePortList},
	{names: []string{k8s.ProxyIgnoreSubnetsAnnotation}, path: "proxyInit.skipSubnets", parse: parseSubnets},
	{names: []string{CloseWaitTimeoutAnnotation}, path: "proxyInit.closeWaitTimeoutSecs", parse: parseSeconds},
	{names: []string{ProxyCPURequestAnnotation}, path: "proxy.resources.cpu.request", parse: parseQuantity},
	{names: []string{ProxyCPULimitAnnotation}, path: "proxy.resources.cpu.limit", parse: parseQuantity},
	{names: []string{ProxyMemoryRequestAnnotation}, path: "proxy.resources.memory.request", parse: parseQuantity},
	{names: []string{ProxyMemoryLimitAnnotation}, path: "proxy.resources.memory.limit", parse: parseQuantity},
	{names: []string{ProxyEphemeralStorageRequestAnnotation}, path: "proxy.resources.ephemeral-storage.request", parse: parseQuantity},
	{names: []string{ProxyEphemeralStorageLimitAnnotation}, path: "proxy.resources.ephemeral-storage.limit", parse: parseQuantity},
	{names: []string{ProxyUIDAnnotation}, path: "proxy.uid", parse: parseID},
	{names: []string{ProxyGIDAnnotation}, path: "proxy.gid", parse: parseID},
	{names: []string{ProxyLogLevelAnnotation}, path: "proxy.logLevel", parse: parseLogLevel},
	{names: []string{ProxyLogFormatAnnotation}, path: "proxy.logFormat", parse: parseEnum("plain", "json")},
	{names: []string{ProxyLogHTTPHeadersAnnotation}, path: "proxy.logHTTPHeaders", parse: parseEnum("off", "insecure")},
	{names: []string{ProxyAdminShutdownAnnotation}, path: "proxy.enableShutdownEndpoint", parse: parseEnabled},
	{names: []string{ProxyEnableExternalProfilesAnnotation}, path: "proxy.enableExternalProfiles", parse: parseBool},
	{names: []string{ProxyOutboundConnectTimeoutAnnotation}, path: "proxy.outboundConnectTimeout", parse: parseDuration},
	{names: []string{ProxyInboundConnectTimeoutAnnotation}, path: "proxy.inboundConnectTimeout", parse: parseDuration},
	{names: []string{ProxyOutboundDiscoveryCacheUnusedTimeoutAnnotation}, path: "proxy.outboundDiscoveryCacheUnusedTimeout", parse: parseDuration},
	{names: []string{ProxyDisableOutboundProtocolDetectTimeoutAnnotation}, path: "proxy.disableOutboundProtocolDetectTimeout", parse: parseBool},
	{names: []string{ProxyDisableInboundProtocolDetectTimeoutAnnotation}, path: "proxy.disableInboundProtocolDetectTimeout", parse: parseBool},
	{names: []string{ProxyAwaitAnnotation}, path: "proxy.await", parse: parseEnabled},
	{names: []string{ProxyShutdownGracePeriodAnnotation}, path: "proxy.shutdownGracePeriod", parse: parseDuration},
	{names: []string{ProxyEnableNativeSidecarAnnotation, proxyEnableNativeSidecarBeta, proxyEnableNativeSidecarAlpha}, path: "proxy.nativeSidecar", parse: parseBool},
	{names: []string{ProxyWaitBeforeExitSecondsAnnotation}, path: "proxy.waitBeforeExitSeconds", parse: parseUint},
	{names: []string{k8s.ProxyDefaultInboundPolicyAnnotation}, path: "proxy.defaultInboundPolicy", parse: parseEnum(policy.DefaultPolicies...)},
	{names: []string{k8s.ProxyRequireIdentityOnInboundPortsAnnotation}, path: "proxy.requireIdentityOnInboundPorts", parse: parsePortList},
}

func parseString(v string, _ *corev1.PodSpec) (any, error) {
	if v == "" {
		return nil, fmt.Errorf("empty value")
	}
	return v, nil
}

func parseEnum(allowed ...string) func(string, *corev1.PodSpec) (any, error) {
	return func(v string, _ *corev1.PodSpec) (any, error) {
		for _, a := range allowed {
			if v == a {
				return v, nil
			}
		}
		return nil, fmt.Errorf("want one of %s", strings.Join(allowed, ", "))
	}
}

func parsePort(v string, _ *corev1.PodSpec) (any, error) {
	r, err := k8s.ParsePortRange(v)
	if err != nil {
		return nil, err
	}
	if r.Lo != r.Hi {
		return nil, fmt.Errorf("want a single port, not a range")
	}
	return int64(r.Lo), nil
}

func parsePortList(v string, _ *corev1.PodSpec) (any, error) {
	set, err := k8s.ParsePortSet(v)
	if err != nil {
		return nil, err
	}
	return set.String(), nil
}

// parseNamedPortList accepts port names of the pod's containers too, and
// resolves them to numbers: the proxy only knows numbers.
func parseNamedPortList(v string, pod *corev1.PodSpec) (any, error) {
	set, err := k8s.ParsePortSetNamed(v, k8s.ContainerPortNames(&corev1.Pod{Spec: *pod}))
	if err != nil {
		return nil, err
	}
	return set.String(), nil
}

func parseSubnets(v string, _ *corev1.PodSpec) (any, error) {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid CIDR %q", s)
		}
		out = append(out, p.String())
	}
	return strings.Join(out, ","), nil
}

func parseQuantity(v string, _ *corev1.PodSpec) (any, error) {
	if _, err := resource.ParseQuantity(v); err != nil {
		return nil, fmt.Errorf("invalid quantity: %w", err)
	}
	return v, nil
}

func parseID(v string, _ *corev1.PodSpec) (any, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("want a non-negative integer")
	}
	return n, nil
}

func parseUint(v string, _ *corev1.PodSpec) (any, error) {
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil {
		return nil, fmt.Errorf("want a non-negative integer")
	}
	return int64(n), nil
}

func parseLogLevel(v string, _ *corev1.PodSpec) (any, error) {
	if _, err := proxyenv.ParseLogSpec(v); err != nil {
		return nil, err
	}
	return v, nil
}

func parseEnabled(v string, _ *corev1.PodSpec) (any, error) {
	switch v {
	case Enabled:
		return true, nil
	case Disabled:
		return false, nil
	}
	return nil, fmt.Errorf("want %s or %s", Enabled, Disabled)
}

func parseBool(v string, _ *corev1.PodSpec) (any, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, fmt.Errorf("want true or false")
	}
	return b, nil
}

func parseDuration(v string, _ *corev1.PodSpec) (any, error) {
	if _, err := proxyenv.ParseDuration(v); err != nil {
		return nil, err
	}
	return v, nil
}

// parseSeconds reads a duration ("1h", "3600s") as whole seconds.
func parseSeconds(v string, _ *corev1.PodSpec) (any, error) {
	d, err := proxyenv.ParseDuration(v)
	if err != nil {
		return nil, err
	}
	return int64(d.Seconds()), nil
}

// parseAdditionalEnv reads proxy-additional-env: a JSON list of EnvVar.
func parseAdditionalEnv(v string) ([]corev1.EnvVar, error) {
	var env []corev1.EnvVar
	if err := json.Unmarshal([]byte(v), &env); err != nil {
		return nil, fmt.Errorf("want a JSON list of environment variables: %w", err)
	}
	for _, e := range env {
		if e.Name == "" {
			return nil, fmt.Errorf("environment variable without a name")
		}
	}
	return env, nil
}

// ValidateAnnotation checks a configuration annotation's value as the
// injector reads it, e.g. for a CLI flag that becomes the annotation. Port
// names cannot be resolved without a pod and are refused.
func ValidateAnnotation(name, value string) error {
	if name == ProxyAdditionalEnvAnnotation {
		_, err := parseAdditionalEnv(value)
		return err
	}
	for _, s := range settings {
		if slices.Contains(s.names, name) {
			_, err := s.parse(strings.TrimSpace(value), &corev1.PodSpec{})
			return err
		}
	}
	return fmt.Errorf("unknown annotation %s", name)
}
