// Package k8sbin locates the Kubernetes binaries hack/build-k8s.sh builds
// (etcd, kube-apiserver, kubelet, CoreDNS...), for the tests that run them
// (test/cluster) and the tools that package them (hack/images).
package k8sbin

import "os"

// Version is the Kubernetes version hack/build-k8s.sh builds by default.
const Version = "v1.36.3"

// DirEnv names the environment variable that points at the directory
// holding the binaries.
const DirEnv = "L5D_K8S_BIN"

// DefaultDir is where hack/build-k8s.sh puts the binaries by default.
const DefaultDir = "/var/tmp/l5d-k8s/" + Version + "/bin"

// Dir returns the directory the binaries are taken from: $L5D_K8S_BIN, else
// DefaultDir.
func Dir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return DefaultDir
}
