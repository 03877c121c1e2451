package store

import (
	"strings"
	"testing"

	spv1alpha2 "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
)

const splitManifests = `apiVersion: linkerd.io/v1alpha1
kind: ServiceProfile
metadata: {name: web.ns.svc.cluster.local, namespace: ns}
spec: {routes: [{name: r, condition: {method: GET}}]}
---
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: web-split, namespace: ns}
spec: {service: web, backends: [{service: web, weight: 900m}, {service: web-v2, weight: 100m}]}
---
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: other-split}
spec: {service: other, backends: [{service: a, weight: 1}]}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: web, namespace: ns}
spec: {parentRefs: [{name: web, kind: Service}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: ns}
spec: {parentRefs: [{name: web, kind: Service, group: core}, {name: web2, namespace: other, kind: Service}]}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: to-server, namespace: ns}
spec: {parentRefs: [{name: web, kind: Server, group: policy.linkerd.io}]}
`

func TestSplitKinds(t *testing.T) {
	dec, err := DecodeObjects([]byte(splitManifests))
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Objects) != 6 || dec.Ignored != 0 {
		t.Fatalf("decoded %d objects (%d ignored), want 6", len(dec.Objects), dec.Ignored)
	}
	m := NewMemory()
	var events []string
	m.AddHandler(func(ev Event) { events = append(events, ev.Type.String()+" "+ev.Key().String()) })
	m.Apply(dec.Objects...)
	want := []string{
		"added ServiceProfile/ns/web.ns.svc.cluster.local",
		"added TrafficSplit/ns/web-split",
		"added TrafficSplit/default/other-split",
		"added HTTPRoute/ns/web",
		"added HTTPRoute.gateway.networking.k8s.io/ns/web",
		"added HTTPRoute.gateway.networking.k8s.io/ns/to-server",
	}
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}
	if sp, ok := m.ServiceProfile("ns", "web.ns.svc.cluster.local"); !ok || sp.APIVersion != spv1alpha2.V1alpha1 {
		t.Errorf("v1alpha1 ServiceProfile: %v %v", sp, ok)
	}
	ts := m.TrafficSplits("ns")
	if len(ts) != 1 || ts[0].Name != "web-split" || ts[0].Spec.Backends[1].Weight.MilliValue() != 100 {
		t.Errorf("TrafficSplits(ns) = %+v", ts)
	}
	var names []string
	for _, r := range m.HTTPRoutesFor("ns", "web") {
		names = append(names, r.APIVersion+" "+r.Name)
	}
	if got, want := strings.Join(names, ","), "policy.linkerd.io/v1beta3 web,gateway.networking.k8s.io/v1 web"; got != want {
		t.Errorf("HTTPRoutesFor(ns, web) = %s, want %s", got, want)
	}
	if r := m.HTTPRoutesFor("other", "web2"); len(r) != 1 || r[0].Name != "web" {
		t.Errorf("HTTPRoutesFor(other, web2) = %v, want the cross-namespace parent", r)
	}
	m.Delete(Key{KindGatewayHTTPRoute, "ns", "web"})
	if r := m.HTTPRoutesFor("ns", "web"); len(r) != 1 {
		t.Errorf("after deletion HTTPRoutesFor(ns, web) = %d routes, want 1", len(r))
	}
}
