package bench

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The routes variant: the one-endpoint balanced pair (found by the
// destination service) whose Service has a ServiceProfile of 10 routes,
// the matched one (the last) retryable: every request is matched, counted
// in route_* and buffered for a retry, with the budget's bookkeeping.
const (
	oursRoutesName = "linkerd-go-routes-mtls"
	routesVIP      = "10.96.0.30"
	// routesMatched is the rt_route of the matched route.
	routesMatched = "fortio"
)

// routesProfileYAML is the ServiceProfile of Service name in meshAppNS:
// nine routes the load never matches, then one for fortio's HTTP and gRPC
// requests.
func routesProfileYAML(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `---
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: %[1]s.%[2]s.svc.cluster.local, namespace: %[2]s}
spec:
  retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 10s}
  routes:
`, name, meshAppNS)
	for i := range 9 {
		fmt.Fprintf(&b, "  - {name: route-%d, condition: {method: POST, pathRegex: '/api/v%d/items/[^/]+'}}\n", i, i)
	}
	fmt.Fprintf(&b, `  - name: %s
    isRetryable: true
    condition:
      any: [{pathRegex: /}, {pathRegex: '/fgrpc\.PingServer/Ping'}]
    responseClasses: [{condition: {status: {min: 500, max: 599}}, isFailure: true}]
`, routesMatched)
	return b.String()
}

// waitRouted sends requests through the pair until the client's proxy
// counts one on the profile's matched route: the profile is in force.
func waitRouted(p pods, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DialContext: p.client.DialContext}}
	defer client.CloseIdleConnections()
	admin := &http.Client{Transport: &http.Transport{DialContext: p.client.DialContext, DisableKeepAlives: true}}
	for {
		if err := getOK(ctx, client, url); err != nil {
			return fmt.Errorf("request through the pair: %w", err)
		}
		n, err := scrapeCounter(ctx, admin, "http://127.0.0.1:4191/metrics", "route_request_total", map[string]string{"rt_route": routesMatched})
		if err == nil && n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the client's proxy never counted a request on route %s (last error: %v)", routesMatched, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
