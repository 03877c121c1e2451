package v1alpha2

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The ServiceProfile resource's API group, version, kind and resource.
const (
	GroupName = "linkerd.io"
	Version   = "v1alpha2"
	Kind      = "ServiceProfile"
	Resource  = "serviceprofiles"
)

// V1alpha1 is the apiVersion of 2.11-era ServiceProfiles: the same schema,
// still served, decoded into the same types.
const V1alpha1 = GroupName + "/v1alpha1"

// SchemeGroupVersion is linkerd.io/v1alpha2.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

// GroupVersionResource is serviceprofiles.linkerd.io/v1alpha2.
var GroupVersionResource = SchemeGroupVersion.WithResource(Resource)

// ServiceProfile describes the routes of a service and how its clients
// retry, time out and split its traffic.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type ServiceProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec Spec `json:"spec"`
}

// ServiceProfileList is a list of ServiceProfiles.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type ServiceProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []ServiceProfile `json:"items"`
}

// Spec is a ServiceProfile's specification.
type Spec struct {
	// Routes of the service; a request takes the first whose condition
	// matches.
	Routes []*RouteSpec `json:"routes,omitempty"`
	// RetryBudget bounds the retries of the retryable routes.
	RetryBudget *RetryBudget `json:"retryBudget,omitempty"`
	// DstOverrides send weighted shares of the traffic to other
	// authorities (traffic splitting).
	DstOverrides []*WeightedDst `json:"dstOverrides,omitempty"`
	// OpaquePorts are ports ("8080" or ranges "4000-4100") whose traffic
	// skips protocol detection.
	OpaquePorts []string `json:"opaquePorts,omitempty"`
}

// RouteSpec is one route of a service.
type RouteSpec struct {
	// Name of the route, the rt_route label of its metrics.
	Name string `json:"name"`
	// Condition selects the requests of the route.
	Condition *RequestMatch `json:"condition"`
	// ResponseClasses classify responses; the first match decides.
	ResponseClasses []*ResponseClass `json:"responseClasses,omitempty"`
	// IsRetryable lets the proxy retry failed requests of the route.
	IsRetryable bool `json:"isRetryable,omitempty"`
	// Timeout is how long a request of the route may take, as a Go
	// duration ("300ms"); empty means the default.
	Timeout string `json:"timeout,omitempty"`
}

// RequestMatch matches a request when every field it sets matches.
type RequestMatch struct {
	// All matches when every one of its conditions matches.
	All []*RequestMatch `json:"all,omitempty"`
	// Any matches when at least one of its conditions matches.
	Any []*RequestMatch `json:"any,omitempty"`
	// Not matches when its condition does not.
	Not *RequestMatch `json:"not,omitempty"`
	// PathRegex is a regular expression (Go RE2 syntax) the whole request
	// path must match.
	PathRegex string `json:"pathRegex,omitempty"`
	// Method is the request's HTTP method (case-sensitive: "GET").
	Method string `json:"method,omitempty"`
}

// ResponseClass says whether the responses its condition matches are
// failures.
type ResponseClass struct {
	Condition *ResponseMatch `json:"condition"`
	IsFailure bool           `json:"isFailure,omitempty"`
}

// ResponseMatch matches a response when every field it sets matches.
type ResponseMatch struct {
	All    []*ResponseMatch `json:"all,omitempty"`
	Any    []*ResponseMatch `json:"any,omitempty"`
	Not    *ResponseMatch   `json:"not,omitempty"`
	Status *Range           `json:"status,omitempty"`
}

// Range is an inclusive range of HTTP status codes. A bound left out (0)
// is open: min defaults to 100, max to 599.
type Range struct {
	Min int32 `json:"min,omitempty"`
	Max int32 `json:"max,omitempty"`
}

// Bounds returns the range with its defaults filled in.
func (r *Range) Bounds() (lo, hi int32) {
	lo, hi = r.Min, r.Max
	if lo == 0 {
		lo = MinStatus
	}
	if hi == 0 {
		hi = MaxStatus
	}
	return lo, hi
}

// The HTTP status codes a Range may name.
const (
	MinStatus = 100
	MaxStatus = 599
)

// RetryBudget bounds retries as a share of the original requests.
type RetryBudget struct {
	// RetryRatio is the retries allowed per original request (0.2: one
	// retry for five requests).
	RetryRatio float32 `json:"retryRatio"`
	// MinRetriesPerSecond are allowed on top of RetryRatio.
	MinRetriesPerSecond int32 `json:"minRetriesPerSecond"`
	// TTL is the window requests and retries are counted over, as a Go
	// duration ("10s").
	TTL string `json:"ttl"`
}

// WeightedDst is a share of the traffic sent to another authority.
type WeightedDst struct {
	// Authority is a host name (usually a service's FQDN) with an optional
	// port.
	Authority string `json:"authority"`
	// Weight is the share, relative to the other overrides ("500m", 1).
	Weight resource.Quantity `json:"weight"`
}

// SchemeBuilder adds the types to a runtime.Scheme.
var (
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	AddToScheme   = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &ServiceProfile{}, &ServiceProfileList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
