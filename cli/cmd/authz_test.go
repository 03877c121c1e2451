package cmd

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/internal/golden"
)

const authzRouteManifests = diagnosticsPolicyManifests + `
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: vote, namespace: emojivoto}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: web-admin}]
  rules: [{matches: [{path: {type: PathPrefix, value: /api/vote}}]}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: voters, namespace: emojivoto}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: vote}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: vote-bot}]
`

// TestAuthzGolden runs `linkerd authz` against a real policy server (the
// local-mesh path: the workload is one pod of its name). Regenerate with:
// go test ./cli/cmd -update
func TestAuthzGolden(t *testing.T) {
	addr := startPolicyWith(t, authzRouteManifests)
	stateDir := t.TempDir()
	tests := []struct {
		name string
		args []string
	}{
		{"authz_servers_and_routes", []string{"-n", "emojivoto", "deploy/web-0"}},
		{"authz_type_name", []string{"-n", "emojivoto", "pod", "web-0"}},
		{"authz_default_only", []string{"-n", "elsewhere", "deploy/web-0"}},
		{"authz_bad_type", []string{"-n", "emojivoto", "service/web"}},
		{"authz_no_name", []string{"-n", "emojivoto", "deploy/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), append([]string{"authz", "--policy-addr", addr, "--state-dir", stateDir}, tt.args...),
				Env{Stdout: &stdout, Stderr: &stderr})
			golden.Check(t, tt.name, strings.ReplaceAll(golden.Result(code, stdout.String(), stderr.String()), addr, "ADDR"))
			if (stderr.Len() > 0) != (code != 0) {
				t.Errorf("exit %d with stderr %q", code, stderr.String())
			}
		})
	}
}
