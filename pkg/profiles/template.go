package profiles

import (
	"bytes"
	"text/template"
)

// profileTemplate is a ServiceProfile to edit: one route, with every field
// a route and the profile may set, the optional ones commented out.
var profileTemplate = template.Must(template.New("profile").Parse(`### ServiceProfile of {{.FQDN}} ###
# A ServiceProfile tells the proxies calling a service what its routes are.
# Each route gets its own metrics (linkerd viz routes) and may be retried
# or time out. A request takes the first route whose condition matches it;
# the others are counted under [DEFAULT].
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  # The profile is named after the fully-qualified name of its service.
  name: {{.FQDN}}
  namespace: {{.Namespace}}
spec:
  routes:
  - name: GET /books/{id} # shown in the rt_route label and by viz routes
    # A condition matches a request by method and by path (a regular
    # expression the whole path must match). Conditions combine with
    # all: [...], any: [...] and not: {...}.
    condition:
      method: GET
      pathRegex: /books/[^/]*
    # Response classes say which responses are failures; the first whose
    # condition matches decides. Without one, a 5xx is a failure.
    responseClasses:
    - condition:
        status:
          min: 500
          max: 599
      isFailure: true
    # A retryable route's failed requests are retried, within the budget
    # below. Only idempotent routes should be.
    isRetryable: false
    # A request taking longer than this is answered 504 by the proxy.
    timeout: 10s
  # How many retries the retryable routes may add: a ratio of the
  # original requests, plus a minimum per second, counted over ttl.
  # retryBudget:
  #   retryRatio: 0.2
  #   minRetriesPerSecond: 10
  #   ttl: 10s
  # Send shares of the traffic to other services (traffic split):
  # dstOverrides:
  # - authority: {{.Name}}-v2.{{.Namespace}}.svc.{{.Domain}}.
  #   weight: 100m
  # Ports whose traffic is opaque TCP (no protocol detection):
  # opaquePorts:
  # - "3306"
`))

// Template returns a commented ServiceProfile for svc, to edit and apply.
func Template(svc Service) string {
	domain := svc.ClusterDomain
	if domain == "" {
		domain = DefaultClusterDomain
	}
	var b bytes.Buffer
	// Executing a parsed template into a buffer fails only on a bad
	// field name, which the tests catch.
	_ = profileTemplate.Execute(&b, struct {
		FQDN, Name, Namespace, Domain string
	}{svc.FQDN(), svc.Name, svc.Namespace, domain})
	return b.String()
}
