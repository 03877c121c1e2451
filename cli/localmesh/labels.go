package localmesh

import (
	"os"
	"regexp"
)

// Kubernetes label syntax: an optional DNS-subdomain prefix and a name of
// at most 63 characters; values at most 63 characters, possibly empty.
var (
	labelKeyRE   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValueRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
)

// appEnv is an application's environment: PATH (the CLI's, to find
// programs as the CLI did) and env, which may override it.
func appEnv(env []string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH")}, env...)
}
