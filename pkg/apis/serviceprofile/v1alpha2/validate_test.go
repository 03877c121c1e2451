package v1alpha2

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// validProfile uses every field of the spec.
const validProfile = `apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: web.emojivoto.svc.cluster.local
  namespace: emojivoto
spec:
  routes:
  - name: GET /api/vote
    condition:
      method: GET
      pathRegex: /api/vote
    responseClasses:
    - condition:
        status: {min: 500, max: 599}
      isFailure: true
    - condition:
        any: [{status: {min: 429, max: 429}}, {not: {status: {max: 399}}}]
    isRetryable: true
    timeout: 300ms
  - name: POST or PUT
    condition:
      any:
      - method: POST
      - all: [{method: PUT}, {pathRegex: '/x/[^/]+'}]
      not: {pathRegex: /health}
  - name: custom method
    condition: {method: PROPFIND}
  retryBudget:
    retryRatio: 0.2
    minRetriesPerSecond: 10
    ttl: 10s
  dstOverrides:
  - authority: web-v2.emojivoto.svc.cluster.local:80
    weight: 500m
  - authority: web.emojivoto.svc.cluster.local
    weight: 1
  - authority: "[fd00::1]:8080"
    weight: 0
  - authority: 10.0.0.1
    weight: "0.5"
  opaquePorts: ["3306", "4000-4100"]
`

func decodeYAML(t *testing.T, doc string) (*ServiceProfile, error) {
	t.Helper()
	if strings.HasPrefix(doc, "{") {
		return Decode([]byte(doc)) // JSON as it is (YAMLToJSON would merge duplicate keys)
	}
	j, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	return Decode(j)
}

// check decodes and validates a profile.
func check(t *testing.T, doc string) error {
	t.Helper()
	sp, err := decodeYAML(t, doc)
	if err != nil {
		return err
	}
	return Validate(sp)
}

func TestValidProfiles(t *testing.T) {
	for name, doc := range map[string]string{
		"every field": validProfile,
		"empty spec": `metadata: {name: web.default.svc.cluster.local}
spec: {}`,
		"external name": `metadata: {name: api.example.com}
spec:
  routes: [{name: all, condition: {pathRegex: '.*'}, timeout: 1m30s}]`,
		"other cluster domain": `metadata: {name: web.ns.svc.example.org}
spec: {}`,
		"open status ranges": `metadata: {name: web.ns.svc.cluster.local}
spec:
  routes:
  - name: r
    condition: {method: GET}
    responseClasses:
    - {condition: {status: {min: 500}}, isFailure: true}
    - {condition: {status: {max: 199}}}`,
		"v1alpha1 (2.11)": `apiVersion: linkerd.io/v1alpha1
kind: ServiceProfile
metadata: {name: web.ns.svc.cluster.local, namespace: ns}
spec:
  routes: [{name: GET /api, condition: {method: GET, pathRegex: /api}, isRetryable: true}]
  retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 10s}`,
		"zero timeout": `metadata: {name: web.ns.svc.cluster.local}
spec:
  routes: [{name: r, condition: {method: GET}, timeout: 0s}]`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := check(t, doc); err != nil {
				t.Errorf("rejected: %v", err)
			}
		})
	}
}

func TestDecodedValues(t *testing.T) {
	sp, err := decodeYAML(t, validProfile)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(sp.Spec.Routes); got != 3 {
		t.Fatalf("%d routes, want 3", got)
	}
	r := sp.Spec.Routes[1]
	if r.Name != "POST or PUT" || len(r.Condition.Any) != 2 || len(r.Condition.Any[1].All) != 2 || r.Condition.Not.PathRegex != "/health" {
		t.Errorf("route 1 decoded as %+v", r)
	}
	if lo, hi := sp.Spec.Routes[0].ResponseClasses[1].Condition.Any[1].Not.Status.Bounds(); lo != 100 || hi != 399 {
		t.Errorf("bounds of {max: 399} = %d..%d, want 100..399", lo, hi)
	}
	if w := sp.Spec.DstOverrides[0].Weight; w.MilliValue() != 500 {
		t.Errorf("weight 500m decoded as %s", w.String())
	}
	if rb := sp.Spec.RetryBudget; rb.RetryRatio != 0.2 || rb.MinRetriesPerSecond != 10 || rb.TTL != "10s" {
		t.Errorf("retry budget %+v", rb)
	}
}

func TestInvalidProfiles(t *testing.T) {
	const meta = "metadata: {name: web.ns.svc.cluster.local}\n"
	// route wraps one route's YAML (flow style) into a profile.
	route := func(r string) string { return meta + "spec:\n  routes:\n  - " + r + "\n" }
	for _, tc := range []struct {
		name string
		doc  string
		want string // the whole message when it starts with "=", else a substring
	}{
		{"no name", "metadata: {}\nspec: {}", "metadata.name: required"},
		{"single label", "metadata: {name: web}\nspec: {}", `metadata.name: "web" is not fully qualified`},
		{"no cluster domain", "metadata: {name: web.ns.svc}\nspec: {}", `metadata.name: "web.ns.svc" lacks the cluster domain`},
		{"upper case name", "metadata: {name: Web.ns.svc.cluster.local}\nspec: {}", `metadata.name: "Web.ns.svc.cluster.local" is not a host name`},
		{"wrong kind", "kind: Service\n" + meta + "spec: {}", `kind: must be ServiceProfile, not "Service"`},
		{"wrong version", "apiVersion: linkerd.io/v1beta1\n" + meta + "spec: {}", "apiVersion: must be linkerd.io/v1alpha2"},
		{"unknown spec field", meta + "spec: {route: []}", "=spec.route: unknown field"},
		{"unknown nested field", route("{name: r, condition: {any: [{method: GET}, {all: [{methd: GET}]}]}}"), "=spec.routes[0].condition.any[1].all[0].methd: unknown field"},
		{"duplicate field", `{"metadata": {"name": "a.b"}, "spec": {"routes": [{"name": "a", "name": "b", "condition": {"method": "GET"}}]}}`, "=spec.routes[0].name: duplicate field"},
		{"wrong type", route("{name: r, condition: {method: GET}, isRetryable: yes please}"), "spec.routes.isRetryable: must be a boolean"},
		{"route without name", route("{condition: {method: GET}}"), "=spec.routes[0].name: required"},
		{"route without condition", route("{name: r}"), "spec.routes[0].condition: required"},
		{"null route", route("null"), "=spec.routes[0]: must not be null"},
		{"empty condition", route("{name: r, condition: {}}"), "spec.routes[0].condition: empty condition"},
		{"bad regex in second route", meta + "spec:\n  routes:\n  - {name: a, condition: {method: GET}}\n  - {name: b, condition: {pathRegex: '/api/(v1'}}\n",
			"=spec.routes[1].condition.pathRegex: error parsing regexp: missing closing ): `/api/(v1`"},
		{"bad nested regex", route("{name: r, condition: {any: [{method: GET}, {not: {pathRegex: '*'}}]}}"), "spec.routes[0].condition.any[1].not.pathRegex: error parsing regexp"},
		{"lower case method", route("{name: r, condition: {method: get}}"), `spec.routes[0].condition.method: "get" never matches: HTTP methods are case-sensitive, write "GET"`},
		{"method with a space", route("{name: r, condition: {method: GE T}}"), `spec.routes[0].condition.method: "GE T" is not an HTTP method`},
		{"empty all", route("{name: r, condition: {all: []}}"), "=spec.routes[0].condition.all: empty list: give at least one condition"},
		{"null in any", route("{name: r, condition: {any: [null]}}"), "=spec.routes[0].condition.any[0]: must not be null"},
		{"empty not", route("{name: r, condition: {not: {}}}"), "spec.routes[0].condition.not: empty condition"},
		{"bad timeout", route("{name: r, condition: {method: GET}, timeout: '10'}"), `spec.routes[0].timeout: time: missing unit in duration "10"`},
		{"negative timeout", route("{name: r, condition: {method: GET}, timeout: -1s}"), "spec.routes[0].timeout: must not be negative"},
		{"response class without condition", route("{name: r, condition: {method: GET}, responseClasses: [{isFailure: true}]}"), "spec.routes[0].responseClasses[0].condition: required"},
		{"status min above max", route("{name: r, condition: {method: GET}, responseClasses: [{condition: {status: {min: 599, max: 500}}}]}"),
			"=spec.routes[0].responseClasses[0].condition.status: min 599 is above max 500"},
		{"status above 599", route("{name: r, condition: {method: GET}, responseClasses: [{condition: {status: {min: 500, max: 600}}}]}"),
			"=spec.routes[0].responseClasses[0].condition.status.max: 600 is not an HTTP status code (between 100 and 599)"},
		{"negative status", route("{name: r, condition: {method: GET}, responseClasses: [{condition: {status: {min: -1}}}]}"),
			"spec.routes[0].responseClasses[0].condition.status.min: -1 is not an HTTP status code"},
		{"empty status", route("{name: r, condition: {method: GET}, responseClasses: [{condition: {status: {}}}]}"),
			"spec.routes[0].responseClasses[0].condition.status: set min, max or both"},
		{"nested status", route("{name: r, condition: {method: GET}, responseClasses: [{condition: {all: [{status: {min: 500}}, {not: {status: {max: 99}}}]}}]}"),
			"=spec.routes[0].responseClasses[0].condition.all[1].not.status.max: 99 is not an HTTP status code (between 100 and 599)"},
		{"empty response condition", route("{name: r, condition: {method: GET}, responseClasses: [{condition: {any: [{}]}}]}"),
			"spec.routes[0].responseClasses[0].condition.any[0]: empty condition"},
		{"negative retry ratio", meta + "spec: {retryBudget: {retryRatio: -0.1, minRetriesPerSecond: 1, ttl: 10s}}", "=spec.retryBudget.retryRatio: must not be negative, got -0.1"},
		{"negative min retries", meta + "spec: {retryBudget: {retryRatio: 0.2, minRetriesPerSecond: -1, ttl: 10s}}", "=spec.retryBudget.minRetriesPerSecond: must not be negative, got -1"},
		{"bad ttl", meta + "spec: {retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 1, ttl: ten seconds}}", `spec.retryBudget.ttl: time: invalid duration "ten seconds"`},
		{"no ttl", meta + "spec: {retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 1}}", "spec.retryBudget.ttl: required"},
		{"zero ttl", meta + "spec: {retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 1, ttl: 0s}}", "spec.retryBudget.ttl: must be positive"},
		{"override without authority", meta + "spec: {dstOverrides: [{weight: 1}]}", "spec.dstOverrides[0].authority: required"},
		{"negative weight", meta + "spec: {dstOverrides: [{authority: a.b, weight: 1}, {authority: c.d, weight: '-1'}]}", "=spec.dstOverrides[1].weight: must not be negative, got -1"},
		{"weight not a quantity", meta + "spec: {dstOverrides: [{authority: a.b, weight: half}]}", `=spec.dstOverrides[0].weight: "half" is not a quantity (e.g. 1, 500m, 0.5)`},
		{"authority port out of range", meta + "spec: {dstOverrides: [{authority: 'web.ns.svc.cluster.local:99999', weight: 1}]}", `spec.dstOverrides[0].authority: "web.ns.svc.cluster.local:99999": invalid port "99999"`},
		{"authority not a host", meta + "spec: {dstOverrides: [{authority: 'web_v2.ns', weight: 1}]}", `spec.dstOverrides[0].authority: "web_v2.ns": "web_v2.ns" is not a host name`},
		{"bad opaque port", meta + "spec: {opaquePorts: ['3306', '10-5']}", `spec.opaquePorts[1]: range "10-5": lower bound is above upper bound`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := check(t, tc.doc)
			if err == nil {
				t.Fatal("accepted")
			}
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Errorf("error %T (%v) is not an *InvalidError", err, err)
			}
			if want, ok := strings.CutPrefix(tc.want, "="); ok {
				if err.Error() != want {
					t.Errorf("error\n  %s\nwant\n  %s", err, want)
				}
			} else if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n  %s\ndoes not contain\n  %s", err, tc.want)
			}
		})
	}
}

// TestEveryProblemReported: one review lists all the problems, in order.
func TestEveryProblemReported(t *testing.T) {
	err := check(t, `metadata: {name: web}
spec:
  routes:
  - {name: '', condition: {pathRegex: '('}}
  retryBudget: {retryRatio: -1, minRetriesPerSecond: 0, ttl: 1s}`)
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("error %v", err)
	}
	var paths []string
	for _, fe := range inv.Errors {
		paths = append(paths, fe.Path)
	}
	want := "metadata.name spec.routes[0].name spec.routes[0].condition.pathRegex spec.retryBudget.retryRatio"
	if got := strings.Join(paths, " "); got != want {
		t.Errorf("paths %q, want %q", got, want)
	}
	if strings.Count(err.Error(), "; ") != 3 {
		t.Errorf("message %q does not join the four problems", err)
	}
}

// TestDeepNesting: absurd nesting is refused, not followed.
func TestDeepNesting(t *testing.T) {
	cond := "{method: GET}"
	for range maxConditionDepth + 5 {
		cond = "{not: " + cond + "}"
	}
	err := check(t, "metadata: {name: a.b}\nspec:\n  routes: [{name: r, condition: "+cond+"}]")
	if err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Fatalf("error %v", err)
	}
}

func TestDeepCopy(t *testing.T) {
	sp, err := decodeYAML(t, validProfile)
	if err != nil {
		t.Fatal(err)
	}
	cp := sp.DeepCopy()
	if !equality.Semantic.DeepEqual(sp, cp) {
		t.Fatal("copy differs from the original")
	}
	cp.Spec.Routes[1].Condition.Any[1].All[0].Method = "PATCH"
	cp.Spec.Routes[0].ResponseClasses[0].Condition.Status.Min = 400
	cp.Spec.DstOverrides[0].Weight = resource.MustParse("2")
	cp.Spec.RetryBudget.TTL = "1s"
	cp.Spec.OpaquePorts[0] = "1"
	cp.Labels = map[string]string{"a": "b"}
	if sp.Spec.Routes[1].Condition.Any[1].All[0].Method != "PUT" || sp.Spec.Routes[0].ResponseClasses[0].Condition.Status.Min != 500 ||
		sp.Spec.DstOverrides[0].Weight.MilliValue() != 500 || sp.Spec.RetryBudget.TTL != "10s" || sp.Spec.OpaquePorts[0] != "3306" || sp.Labels != nil {
		t.Error("changing the copy changed the original")
	}
	list := &ServiceProfileList{Items: []ServiceProfile{*sp}}
	if lc, ok := list.DeepCopyObject().(*ServiceProfileList); !ok || !equality.Semantic.DeepEqual(list, lc) {
		t.Error("list copy differs")
	}
	var nilSP *ServiceProfile
	if nilSP.DeepCopy() != nil {
		t.Error("copy of nil is not nil")
	}
}
