// Package version holds the build's version, set at link time:
//
//	go build -ldflags "-X github.com/linkerd-go/linkerd/pkg/version.Version=stable-0.1.0"
package version

// Version is the release name of this build ("dev" when not stamped).
var Version = "dev"

// GitSHA is the commit this build was made from, when stamped.
var GitSHA = ""
