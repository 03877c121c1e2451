package destination

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/apis/split"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func decodeTS(t *testing.T, doc string) *split.TrafficSplit {
	t.Helper()
	ts, err := split.Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if ts.Namespace == "" {
		ts.Namespace = "emojivoto"
	}
	return ts
}

func decodeRoute(t *testing.T, doc string) *policy.HTTPRoute {
	t.Helper()
	obj, err := policy.Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	r := obj.(*policy.HTTPRoute)
	if r.Namespace == "" {
		r.Namespace = "emojivoto"
	}
	return r
}

func dsts(ds []*destinationv1.WeightedDst) string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s=%d", d.GetAuthority(), d.GetWeightMilli()))
	}
	return strings.Join(out, ",")
}

func TestTrafficSplitOverrides(t *testing.T) {
	tests := []struct {
		name, doc string
		port      uint32
		want      string
	}{
		{"v1alpha1 quantities", `apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: s}
spec: {service: web-svc, backends: [{service: web-svc, weight: 900m}, {service: web-v2, weight: 100m}]}`, 80,
			"web-svc.emojivoto.svc.cluster.local:80=900,web-v2.emojivoto.svc.cluster.local:80=100"},
		{"v1alpha2 integers, no port", `apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: s}
spec: {service: web-svc, backends: [{service: web-v1, weight: 90}, {service: web-v2, weight: 10}]}`, 0,
			"web-v1.emojivoto.svc.cluster.local=90000,web-v2.emojivoto.svc.cluster.local=10000"},
		{"a qualified backend and a zero weight", `apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: s}
spec: {service: web-svc, backends: [{service: web.other.svc.cluster.local, weight: 1}, {service: idle, weight: 0}]}`, 8080,
			"web.other.svc.cluster.local:8080=1000,idle.emojivoto.svc.cluster.local:8080=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dsts(TrafficSplitOverrides(decodeTS(t, tt.doc), "cluster.local", tt.port))
			if got != tt.want {
				t.Errorf("overrides\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestApexIs(t *testing.T) {
	for _, tt := range []struct {
		apex string
		want bool
	}{
		{"web", true}, {"web.ns", true}, {"web.ns.svc.cluster.local", true}, {"web.ns.svc.cluster.local.", true},
		{"web2", false}, {"web.other.svc.cluster.local", false},
	} {
		if got := apexIs(tt.apex, "web", "ns", "cluster.local"); got != tt.want {
			t.Errorf("apexIs(%q) = %v, want %v", tt.apex, got, tt.want)
		}
	}
}

func backendRoutesString(brs []*destinationv1.BackendRoute) []string {
	var out []string
	for _, br := range brs {
		c := br.GetCondition()
		cond := c.GetMethod()
		switch {
		case c.GetPathExact() != "":
			cond += " =" + c.GetPathExact()
		case c.GetPathRegex() != "":
			cond += " ~" + c.GetPathRegex()
		default:
			cond += " " + c.GetPathPrefix() + "*"
		}
		for _, h := range c.GetHeaders() {
			cond += fmt.Sprintf(" h:%s=%s", h.GetName(), h.GetValue())
			if h.GetRegex() {
				cond += "(re)"
			}
		}
		for _, q := range c.GetQueryParams() {
			cond += fmt.Sprintf(" q:%s=%s", q.GetName(), q.GetValue())
		}
		if ms := br.GetTimeoutMs(); ms > 0 {
			cond += fmt.Sprintf(" timeout=%dms", ms)
		}
		out = append(out, fmt.Sprintf("%s [%s] -> %s", br.GetName(), strings.TrimSpace(cond), dsts(br.GetBackends())))
	}
	return out
}

func TestBackendRoutes(t *testing.T) {
	canary := `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-canary}
spec:
  parentRefs: [{name: web-svc, kind: Service, group: core, port: 80}]
  rules:
  - backendRefs: [{name: web-v1, port: 8080, weight: 90}, {name: web-v2, port: 8080, weight: 10}]
  - matches:
    - headers: [{name: x-canary, value: "1"}]
    - path: {type: Exact, value: /leaderboard}
    backendRefs: [{name: web-v2}]
  - name: api
    matches:
    - {path: {value: /api}, method: POST, queryParams: [{name: v, value: "2"}]}
    - {path: {type: RegularExpression, value: "/api/v[0-9]+/.*"}, headers: [{type: RegularExpression, name: x-user, value: "a.*"}]}
    backendRefs: [{name: api, namespace: shared, port: 9090}]
    timeouts: {request: 1m30s, backendRequest: 2s}
  - matches: [{path: {value: /static}}]
    timeouts: {backendRequest: 500ms}`
	policyRoute := `apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: older}
spec:
  parentRefs: [{name: web-svc, kind: Service}]
  rules: [{matches: [{path: {value: /static}}], backendRefs: [{name: cdn, weight: 1}]}]`
	otherPort := `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: other-port}
spec:
  parentRefs: [{name: web-svc, kind: Service, port: 81}]
  rules: [{backendRefs: [{name: nope}]}]`
	serverRoute := `apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: inbound}
spec:
  parentRefs: [{name: web-svc, kind: Server, group: policy.linkerd.io}]
  rules: [{backendRefs: [{name: nope}]}]`

	older := decodeRoute(t, policyRoute)
	older.CreationTimestamp = metav1.NewTime(time.Unix(100, 0))
	newer := decodeRoute(t, canary)
	newer.CreationTimestamp = metav1.NewTime(time.Unix(200, 0))
	routes := []*policy.HTTPRoute{older, newer, decodeRoute(t, otherPort), decodeRoute(t, serverRoute)}

	got := backendRoutesString(BackendRoutes(routes, "emojivoto", "web-svc", "cluster.local", 80))
	want := []string{
		"emojivoto/web-canary/rules[1] [=/leaderboard] -> web-v2.emojivoto.svc.cluster.local:80=1000",
		"emojivoto/web-canary/api [~/api/v[0-9]+/.* h:x-user=a.*(re) timeout=90000ms] -> api.shared.svc.cluster.local:9090=1000",
		"emojivoto/older/rules[0] [/static*] -> cdn.emojivoto.svc.cluster.local:80=1000",
		"emojivoto/web-canary/rules[3] [/static* timeout=500ms] -> ",
		"emojivoto/web-canary/api [POST /api* q:v=2 timeout=90000ms] -> api.shared.svc.cluster.local:9090=1000",
		"emojivoto/web-canary/rules[1] [/* h:x-canary=1] -> web-v2.emojivoto.svc.cluster.local:80=1000",
		"emojivoto/web-canary/rules[0] [/*] -> web-v1.emojivoto.svc.cluster.local:8080=90000,web-v2.emojivoto.svc.cluster.local:8080=10000",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("backend routes\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	// On port 81: the route of that port and the one without a port.
	got = backendRoutesString(BackendRoutes(routes, "emojivoto", "web-svc", "cluster.local", 81))
	want = []string{
		"emojivoto/older/rules[0] [/static*] -> cdn.emojivoto.svc.cluster.local:81=1000",
		"emojivoto/other-port/rules[0] [/*] -> nope.emojivoto.svc.cluster.local:81=1000",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("port 81:\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if got := BackendRoutes(routes, "emojivoto", "other", "cluster.local", 80); len(got) != 0 {
		t.Errorf("another service got %v", backendRoutesString(got))
	}
}

// TestGetProfileSplits streams the profile of a Service through the
// arrival of a TrafficSplit (merged with its ServiceProfile), an HTTPRoute,
// a TrafficSplit with weights summing to 0 (ignored, the last good profile
// kept) and their deletion.
func TestGetProfileSplits(t *testing.T) {
	st := store.NewMemory()
	objs, err := store.DecodeObjects([]byte(profileSvc + "---\n" + profileYAML("first", "/a")))
	if err != nil {
		t.Fatal(err)
	}
	st.Apply(objs.Objects...)
	addr, _ := startGRPC(t, st, Config{})
	client := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := client.GetProfile(ctx, &destinationv1.GetRequest{Authority: "web.emojivoto.svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}
	next := func() string {
		t.Helper()
		p, err := cs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("routes=%d overrides=%s backend=%v", len(p.GetRoutes()), dsts(p.GetDstOverrides()), backendRoutesString(p.GetBackendRoutes()))
	}
	apply := func(doc string) {
		t.Helper()
		d, err := store.DecodeObjects([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		st.Apply(d.Objects...)
	}
	if got, want := next(), "routes=1 overrides= backend=[]"; got != want {
		t.Fatalf("first profile %q, want %q", got, want)
	}
	tsDoc := func(w1, w2 string) string {
		return fmt.Sprintf(`apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: web-split, namespace: emojivoto}
spec: {service: web, backends: [{service: web, weight: %s}, {service: web-v2, weight: %s}]}`, w1, w2)
	}
	apply(tsDoc("90", "10"))
	if got, want := next(), "routes=1 overrides=web.emojivoto.svc.cluster.local:80=90000,web-v2.emojivoto.svc.cluster.local:80=10000 backend=[]"; got != want {
		t.Fatalf("with a TrafficSplit %q, want %q", got, want)
	}
	apply(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: canary, namespace: emojivoto}
spec:
  parentRefs: [{name: web, kind: Service, group: core, port: 80}]
  rules: [{matches: [{headers: [{name: x-canary, value: "1"}]}], backendRefs: [{name: web-v2, port: 80}]}]`)
	if got, want := next(), "routes=1 overrides=web.emojivoto.svc.cluster.local:80=90000,web-v2.emojivoto.svc.cluster.local:80=10000 backend=[emojivoto/canary/rules[0] [/* h:x-canary=1] -> web-v2.emojivoto.svc.cluster.local:80=1000]"; got != want {
		t.Fatalf("with an HTTPRoute %q, want %q", got, want)
	}
	// Weights summing to 0 slipped past validation: ignored, nothing sent;
	// the next message is the following valid change.
	apply(tsDoc("0", "0"))
	time.Sleep(100 * time.Millisecond)
	apply(tsDoc("1", "1"))
	if got, want := next(), "routes=1 overrides=web.emojivoto.svc.cluster.local:80=1000,web-v2.emojivoto.svc.cluster.local:80=1000 backend=[emojivoto/canary/rules[0] [/* h:x-canary=1] -> web-v2.emojivoto.svc.cluster.local:80=1000]"; got != want {
		t.Fatalf("after a bad then a good split %q, want %q", got, want)
	}
	st.Delete(store.Key{Kind: store.KindTrafficSplit, Namespace: "emojivoto", Name: "web-split"},
		store.Key{Kind: store.KindGatewayHTTPRoute, Namespace: "emojivoto", Name: "canary"})
	if got, want := next(), "routes=1 overrides= backend=[]"; got != want {
		t.Fatalf("after deletions %q, want %q", got, want)
	}
}
