package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/linkerd-go/linkerd/internal/testnet"
)

// The authorization variant: the server's proxy enforces a Server per port
// and an AuthorizationPolicy allowing the client's service account (from
// a policy controller in the control pod), vs the default policy of the
// plain pair (all-unauthenticated, no controller).
const (
	oursAuthzName = "linkerd-go-authz-mtls"
	policyPort    = 8090 // of the policy controller, in the control pod
	policyAdmin   = 9991
)

// policyYAML is what the policy controller serves: the server pod, a
// Server on each of its ports and an AuthorizationPolicy for each allowing
// the client's service account.
func policyYAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Pod
metadata: {name: server, namespace: %[1]s, labels: {app: server}}
spec:
  serviceAccountName: server
  containers:
  - name: fortio
    image: fortio
    ports: [{name: http, containerPort: %[2]d}, {name: grpc, containerPort: %[3]d}]
`, meshAppNS, httpPort, grpcPort)
	for _, port := range []string{"http", "grpc"} {
		fmt.Fprintf(&b, `---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: server-%[2]s, namespace: %[1]s}
spec: {podSelector: {matchLabels: {app: server}}, port: %[2]s}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: client-%[2]s, namespace: %[1]s}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: server-%[2]s}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: client}]
`, meshAppNS, port)
	}
	return b.String()
}

// policyController starts the policy controller in the control pod once,
// over a local store holding policyYAML.
func (s *sharedPlane) policyController(t testing.TB) error {
	t.Helper()
	s.policyOnce.Do(func() {
		cp := s.cp
		dir := filepath.Join(cp.dir, "policy-store")
		if s.policyErr = os.MkdirAll(dir, 0o755); s.policyErr != nil {
			return
		}
		if s.policyErr = os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policyYAML()), 0o644); s.policyErr != nil {
			return
		}
		proc := startPinned(t, cp.pod, loadCPU, testnet.ProcSpec{Name: "policy", Path: s.controllerBin, Args: []string{"policy",
			"-addr", fmt.Sprintf(":%d", policyPort), "-admin-addr", fmt.Sprintf(":%d", policyAdmin),
			"-local-store", dir, "-controller-namespace", meshControlNS, "-identity-trust-domain", meshTrustDomain}})
		s.policyErr = waitTCP(cp.pod, proc, addr("127.0.0.1", policyPort))
	})
	return s.policyErr
}

// policyEnv is the server proxy's environment for the policy controller.
func (cp *identityPlane) policyEnv() []string {
	return []string{
		"LINKERD2_PROXY_POLICY_SVC_ADDR=" + addr(cp.pod.IP.String(), policyPort),
		// The control pod's proxy terminates mTLS for the policy controller.
		"LINKERD2_PROXY_POLICY_SVC_NAME=" + identitySvcID,
		fmt.Sprintf(`LINKERD2_PROXY_POLICY_WORKLOAD={"ns":%q,"pod":"server"}`, meshAppNS),
	}
}

// waitAuthorized sends requests through the pair until the server's proxy
// counts one allowed by the AuthorizationPolicy: the policy is in force.
func waitAuthorized(p pods, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DialContext: p.client.DialContext}}
	defer client.CloseIdleConnections()
	admin := &http.Client{Transport: &http.Transport{DialContext: p.server.DialContext, DisableKeepAlives: true}}
	want := map[string]string{"srv_kind": "server", "srv_name": "server-http", "authz_kind": "authorizationpolicy", "authz_name": "client-http"}
	for {
		if err := getOK(ctx, client, url); err != nil {
			return fmt.Errorf("request through the pair: %w", err)
		}
		n, err := scrapeCounter(ctx, admin, "http://127.0.0.1:4191/metrics", "inbound_http_authz_allow_total", want)
		if err == nil && n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the server's proxy never allowed a request by the AuthorizationPolicy (last error: %v)", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scrapeCounter sums the series of a counter family carrying want's labels.
func scrapeCounter(ctx context.Context, client *http.Client, url, family string, want map[string]string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("parse metrics: %w", err)
	}
	var n float64
	for _, m := range fams[family].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && have[k] == v
		}
		if match {
			n += m.GetCounter().GetValue()
		}
	}
	return n, nil
}
