// +k8s:deepcopy-gen=package

// Package v1alpha2 holds the Go types of Linkerd's ServiceProfile custom
// resource (linkerd.io/v1alpha2, the serviceprofiles CRD of
// charts/linkerd-crds), the strict decoding of one and its validation.
//
// A ServiceProfile is named after the fully-qualified name of the service
// it describes (web.emojivoto.svc.cluster.local), or after an external
// host name (api.example.com).
//
// The deep-copy methods are generated (make deepcopy).
package v1alpha2
