// +k8s:deepcopy-gen=package

// Package split holds the Go type of the SMI TrafficSplit custom resource
// (split.smi-spec.io v1alpha1 and v1alpha2, as Linkerd 2.11 used it): a
// Service (the apex) whose traffic is shared by weight between backend
// Services. One Go type reads both versions: a weight is a quantity ("500m",
// 90). Decode decodes one strictly and validates it.
//
// The deep-copy methods are generated (make deepcopy).
package split
