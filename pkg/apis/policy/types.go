// Package policy holds the Go types of Linkerd's authorization policy
// resources (group policy.linkerd.io, the CRDs of charts/linkerd-crds):
// Server (v1beta1 as in 2.11, and v1beta3), ServerAuthorization (v1beta1),
// AuthorizationPolicy, MeshTLSAuthentication and NetworkAuthentication
// (v1alpha1), their strict decoding and their validation.
//
// The versions of Server share one schema, so one Go type reads them all.
package policy

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// GroupName is the resources' API group.
const GroupName = "policy.linkerd.io"

// Kinds.
const (
	KindServer                = "Server"
	KindServerAuthorization   = "ServerAuthorization"
	KindAuthorizationPolicy   = "AuthorizationPolicy"
	KindMeshTLSAuthentication = "MeshTLSAuthentication"
	KindNetworkAuthentication = "NetworkAuthentication"
	KindHTTPRoute             = "HTTPRoute"
	KindNamespace             = "Namespace"
	KindServiceAccount        = "ServiceAccount"
)

// Versions is each kind's served versions.
var Versions = map[string][]string{
	KindServer:                {"v1beta1", "v1beta3"},
	KindServerAuthorization:   {"v1beta1"},
	KindAuthorizationPolicy:   {"v1alpha1"},
	KindMeshTLSAuthentication: {"v1alpha1"},
	KindNetworkAuthentication: {"v1alpha1"},
}

// Proxy protocols of a Server.
const (
	ProtocolUnknown = "unknown"
	ProtocolHTTP1   = "HTTP/1"
	ProtocolHTTP2   = "HTTP/2"
	ProtocolGRPC    = "gRPC"
	ProtocolOpaque  = "opaque"
	ProtocolTLS     = "TLS"
)

// Server selects a port of a set of pods.
type Server struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ServerSpec `json:"spec"`
}

// ServerSpec is a Server's spec.
type ServerSpec struct {
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
	// ExternalWorkloadSelector is accepted (v1beta3) and ignored: there are no external workloads here.
	ExternalWorkloadSelector *metav1.LabelSelector `json:"externalWorkloadSelector,omitempty"`
	Port                     intstr.IntOrString    `json:"port"`
	ProxyProtocol            string                `json:"proxyProtocol,omitempty"`
	// AccessPolicy (v1beta3) is the policy for clients no authorization
	// allows; empty means deny.
	AccessPolicy string `json:"accessPolicy,omitempty"`
}

// ServerAuthorization (2.11) allows clients to reach Servers.
type ServerAuthorization struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ServerAuthorizationSpec `json:"spec"`
}

// ServerAuthorizationSpec is a ServerAuthorization's spec.
type ServerAuthorizationSpec struct {
	Server ServerRef `json:"server"`
	Client Client    `json:"client"`
}

// ServerRef names Servers by name or by label selector.
type ServerRef struct {
	Name     string                `json:"name,omitempty"`
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// Client describes the allowed clients of a ServerAuthorization.
type Client struct {
	Networks        []Network `json:"networks,omitempty"`
	Unauthenticated bool      `json:"unauthenticated,omitempty"`
	MeshTLS         *MeshTLS  `json:"meshTLS,omitempty"`
}

// MeshTLS allows meshed clients.
type MeshTLS struct {
	UnauthenticatedTLS bool                `json:"unauthenticatedTLS,omitempty"`
	Identities         []string            `json:"identities,omitempty"`
	ServiceAccounts    []ServiceAccountRef `json:"serviceAccounts,omitempty"`
}

// ServiceAccountRef names a service account (namespace defaults to the resource's).
type ServiceAccountRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// Network is a CIDR with exceptions.
type Network struct {
	CIDR   string   `json:"cidr"`
	Except []string `json:"except,omitempty"`
}

// AuthorizationPolicy allows a target's clients that satisfy every required authentication.
type AuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              AuthorizationPolicySpec `json:"spec"`
}

// AuthorizationPolicySpec is an AuthorizationPolicy's spec.
type AuthorizationPolicySpec struct {
	TargetRef                  TargetRef   `json:"targetRef"`
	RequiredAuthenticationRefs []TargetRef `json:"requiredAuthenticationRefs"`
}

// TargetRef names a resource.
type TargetRef struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// MeshTLSAuthentication is satisfied by clients with one of its identities.
type MeshTLSAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              MeshTLSAuthenticationSpec `json:"spec"`
}

// MeshTLSAuthenticationSpec is a MeshTLSAuthentication's spec.
type MeshTLSAuthenticationSpec struct {
	Identities   []string    `json:"identities,omitempty"`
	IdentityRefs []TargetRef `json:"identityRefs,omitempty"`
}

// NetworkAuthentication is satisfied by clients from one of its networks.
type NetworkAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NetworkAuthenticationSpec `json:"spec"`
}

// NetworkAuthenticationSpec is a NetworkAuthentication's spec.
type NetworkAuthenticationSpec struct {
	Networks []Network `json:"networks"`
}
