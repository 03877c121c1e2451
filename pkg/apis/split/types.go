package split

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The TrafficSplit resource's API group, kind and resource.
const (
	GroupName = "split.smi-spec.io"
	Kind      = "TrafficSplit"
	Resource  = "trafficsplits"
)

// Versions are the served versions (v1alpha1 is the storage version).
var Versions = []string{"v1alpha1", "v1alpha2"}

// GroupVersionResource is the resource the control plane watches.
var GroupVersionResource = schema.GroupVersionResource{Group: GroupName, Version: "v1alpha1", Resource: Resource}

// TrafficSplit shares the traffic sent to a Service (the apex) between
// backend Services by weight.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type TrafficSplit struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              Spec `json:"spec"`
}

// TrafficSplitList is a list of TrafficSplits.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type TrafficSplitList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrafficSplit `json:"items"`
}

// Spec is a TrafficSplit's spec.
type Spec struct {
	// Service is the apex: the Service (name, or FQDN) clients address.
	Service string `json:"service"`
	// Backends share the apex's traffic by weight.
	Backends []Backend `json:"backends"`
	// Matches (v1alpha2: references to HTTPRouteGroups) are accepted and
	// not used, as in Linkerd.
	Matches []TypedLocalObjectReference `json:"matches,omitempty"`
}

// Backend is a Service and its share of the traffic.
type Backend struct {
	// Service is the backend Service's name in the split's namespace.
	Service string `json:"service"`
	// Weight is the backend's share relative to the others ("500m", 90).
	Weight resource.Quantity `json:"weight"`
}

// TypedLocalObjectReference names a resource in the split's namespace.
type TypedLocalObjectReference struct {
	APIGroup string `json:"apiGroup,omitempty"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
}
