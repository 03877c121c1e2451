package destination

import (
	"slices"
	"testing"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// step is one change to the store and the exact updates a subscriber must
// receive for it.
type step struct {
	name   string
	apply  []metav1.Object
	delete []store.Key
	want   []string
}

// Labels of newPod pods named web-0 / web-1 (unmeshed and meshed), zone unset.
const (
	web0   = "{deployment=web,pod=web-0,pod_template_hash=abc12,serviceaccount=sa,zone=}"
	web1   = "{deployment=web,pod=web-1,pod_template_hash=abc12,serviceaccount=sa,zone=}"
	web0M  = "{control_plane_ns=linkerd,deployment=web,pod=web-0,pod_template_hash=abc12,serviceaccount=sa,zone=}"
	web1M  = "{control_plane_ns=linkerd,deployment=web,pod=web-1,pod_template_hash=abc12,serviceaccount=sa,zone=}"
	setWeb = "{namespace=ns,service=web}"
)

func objs(o ...metav1.Object) []metav1.Object { return o }

func TestUpdateSequences(t *testing.T) {
	http80 := svcPort("http", 80, intstr.FromString("http"))
	web := newSvc("web", "10.96.0.10", http80)
	slice2 := newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.7", "web-0"), newEp("10.42.0.8", "web-1"))

	tests := []struct {
		name      string
		authority string
		initial   []metav1.Object
		steps     []step
	}{
		{
			name:      "service lifecycle",
			authority: "web.ns.svc.cluster.local:80",
			steps: []step{
				{name: "subscribe to unknown service", want: []string{"no_endpoints exists=false"}},
				{name: "service created empty", apply: objs(web), want: []string{"no_endpoints exists=true"}},
				{name: "same service again", apply: objs(newSvc("web", "10.96.0.10", http80))},
				{name: "pods without slice", apply: objs(newPod("web-0", "10.42.0.7"), newPod("web-1", "10.42.0.8"))},
				{name: "slice", apply: objs(slice2), want: []string{
					"add " + setWeb + " 10.42.0.7:8080 id=- hint=- " + web0 + " 10.42.0.8:8080 id=- hint=- " + web1,
				}},
				{name: "one endpoint goes", apply: objs(newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.8", "web-1"))),
					want: []string{"remove 10.42.0.7:8080"}},
				{name: "slice deleted", delete: []store.Key{sliceKey("web-a")}, want: []string{"no_endpoints exists=true"}},
				{name: "slice back", apply: objs(slice2), want: []string{
					"add " + setWeb + " 10.42.0.7:8080 id=- hint=- " + web0 + " 10.42.0.8:8080 id=- hint=- " + web1,
				}},
				{name: "service deleted", delete: []store.Key{svcKey("web")}, want: []string{"no_endpoints exists=false"}},
				{name: "service recreated", apply: objs(web), want: []string{
					"add " + setWeb + " 10.42.0.7:8080 id=- hint=- " + web0 + " 10.42.0.8:8080 id=- hint=- " + web1,
				}},
			},
		},
		{
			name:      "readiness and termination",
			authority: "web.ns.svc.cluster.local",
			initial:   objs(web, slice2, newPod("web-0", "10.42.0.7", meshed), newPod("web-1", "10.42.0.8", meshed)),
			steps: []step{
				{name: "subscribe", want: []string{
					"add " + setWeb + " 10.42.0.7:8080 id=sa.ns hint=h2 " + web0M + " 10.42.0.8:8080 id=sa.ns hint=h2 " + web1M,
				}},
				{name: "web-0 not ready", apply: objs(newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.7", "web-0", notReady), newEp("10.42.0.8", "web-1"))),
					want: []string{"remove 10.42.0.7:8080"}},
				{name: "web-0 ready again (unset means ready)", apply: objs(newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.7", "web-0", readyUnset), newEp("10.42.0.8", "web-1"))),
					want: []string{"add " + setWeb + " 10.42.0.7:8080 id=sa.ns hint=h2 " + web0M}},
				{name: "web-1 terminating", apply: objs(newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.7", "web-0"), newEp("10.42.0.8", "web-1", terminating))),
					want: []string{"remove 10.42.0.8:8080"}},
				{name: "web-1 pod succeeded while still listed", apply: objs(
					newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.7", "web-0"), newEp("10.42.0.8", "web-1")),
					newPod("web-1", "10.42.0.8", meshed, phase("Succeeded"))),
				},
				{name: "all not ready", apply: objs(newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.7", "web-0", notReady), newEp("10.42.0.8", "web-1", notReady))),
					want: []string{"no_endpoints exists=true"}},
				{name: "pod deleted while not ready", delete: []store.Key{podKey("web-0")}},
			},
		},
		{
			name:      "named target port numbered differently per slice",
			authority: "web.ns.svc.cluster.local:80",
			initial: objs(web, newPod("web-0", "10.42.0.7"), newPod("web-1", "10.42.0.8"),
				newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.7", "web-0")),
				newSlice("web-b", "web", slicePorts("http=9090"), newEp("10.42.0.8", "web-1")),
				newSlice("other", "other", slicePorts("http=7070"), newEp("10.42.0.9", ""))),
			steps: []step{
				{name: "subscribe", want: []string{
					"add " + setWeb + " 10.42.0.7:8080 id=- hint=- " + web0 + " 10.42.0.8:9090 id=- hint=- " + web1,
				}},
				{name: "target port renumbered", apply: objs(newSlice("web-b", "web", slicePorts("http=9091"), newEp("10.42.0.8", "web-1"))),
					want: []string{"remove 10.42.0.8:9090", "add " + setWeb + " 10.42.0.8:9091 id=- hint=- " + web1}},
				{name: "other service's slice changes", apply: objs(newSlice("other", "other", slicePorts("http=7071"), newEp("10.42.0.9", "")))},
				{name: "slice moves to another service", apply: objs(newSlice("web-b", "other", slicePorts("http=9091"), newEp("10.42.0.8", "web-1"))),
					want: []string{"remove 10.42.0.8:9091"}},
			},
		},
		{
			name:      "service port rename",
			authority: "web.ns.svc.cluster.local:80",
			initial:   objs(web, slice2, newPod("web-0", "10.42.0.7"), newPod("web-1", "10.42.0.8")),
			steps: []step{
				{name: "subscribe", want: []string{
					"add " + setWeb + " 10.42.0.7:8080 id=- hint=- " + web0 + " 10.42.0.8:8080 id=- hint=- " + web1,
				}},
				{name: "service port renamed, slices not yet", apply: objs(newSvc("web", "10.96.0.10", svcPort("web", 80, intstr.FromString("http")))),
					want: []string{"no_endpoints exists=true"}},
				{name: "slices follow", apply: objs(newSlice("web-a", "web", slicePorts("web=8080"), newEp("10.42.0.7", "web-0"), newEp("10.42.0.8", "web-1"))),
					want: []string{"add " + setWeb + " 10.42.0.7:8080 id=- hint=- " + web0 + " 10.42.0.8:8080 id=- hint=- " + web1}},
				{name: "service port number changes: port 80 gone", apply: objs(newSvc("web", "10.96.0.10", svcPort("web", 8000, intstr.FromString("http")))),
					// Not a service port any more: the endpoints' own port 80.
					want: []string{"remove 10.42.0.7:8080 10.42.0.8:8080", "add " + setWeb + " 10.42.0.7:80 id=- hint=- " + web0 + " 10.42.0.8:80 id=- hint=- " + web1}},
			},
		},
		{
			name:      "zones",
			authority: "web.ns.svc.cluster.local:80",
			initial: objs(web, newPod("web-0", "10.42.0.7", meshed),
				newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.7", "web-0", inZone("zone-a")))),
			steps: []step{
				{name: "subscribe", want: []string{
					"add " + setWeb + " 10.42.0.7:8080 id=sa.ns hint=h2 {control_plane_ns=linkerd,deployment=web,pod=web-0,pod_template_hash=abc12,serviceaccount=sa,zone=zone-a}",
				}},
				{name: "zone changes", apply: objs(newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.7", "web-0", inZone("zone-b")))),
					want: []string{"add " + setWeb + " 10.42.0.7:8080 id=sa.ns hint=h2 {control_plane_ns=linkerd,deployment=web,pod=web-0,pod_template_hash=abc12,serviceaccount=sa,zone=zone-b}"}},
				{name: "zone removed", apply: objs(newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.7", "web-0"))),
					want: []string{"add " + setWeb + " 10.42.0.7:8080 id=sa.ns hint=h2 " + web0M}},
			},
		},
		{
			name:      "opaque ports on pod versus service",
			authority: "db.ns.svc.cluster.local:3306",
			initial: objs(newSvc("db", "10.96.0.20", svcPort("mysql", 3306, intstr.FromInt(3306))),
				newSlice("db-a", "db", slicePorts("mysql=3306"), newEp("10.42.0.7", "web-0")),
				newPod("web-0", "10.42.0.7", meshed)),
			steps: []step{
				{name: "default opaque port, meshed: transport to 4143", want: []string{
					"add {namespace=ns,service=db} 10.42.0.7:3306 id=sa.ns hint=opaque,transport=4143 " + web0M,
				}},
				{name: "pod annotation without 3306 overrides the default", apply: objs(newPod("web-0", "10.42.0.7", meshed, podAnnotation(k8s.ProxyOpaquePortsAnnotation, "9000"))),
					want: []string{"add {namespace=ns,service=db} 10.42.0.7:3306 id=sa.ns hint=h2 " + web0M}},
				{name: "service annotation makes its port opaque", apply: objs(newSvc("db", "10.96.0.20", svcPort("mysql", 3306, intstr.FromInt(3306)), svcAnnotation(k8s.ProxyOpaquePortsAnnotation, "3306"))),
					want: []string{"add {namespace=ns,service=db} 10.42.0.7:3306 id=sa.ns hint=opaque,transport=4143 " + web0M}},
				{name: "service annotation names another port", apply: objs(newSvc("db", "10.96.0.20", svcPort("mysql", 3306, intstr.FromInt(3306)), svcAnnotation(k8s.ProxyOpaquePortsAnnotation, "1-100"))),
					want: []string{"add {namespace=ns,service=db} 10.42.0.7:3306 id=sa.ns hint=h2 " + web0M}},
				{name: "pod names its port, custom inbound port", apply: objs(newPod("web-0", "10.42.0.7", meshed, proxyInbound("0.0.0.0:5143"),
					addContainerPort("mysql", 3306),
					podAnnotation(k8s.ProxyOpaquePortsAnnotation, "mysql"))),
					want: []string{"add {namespace=ns,service=db} 10.42.0.7:3306 id=sa.ns hint=opaque,transport=5143 " + web0M}},
				{name: "unmeshed pod: opaque without transport", apply: objs(newPod("web-0", "10.42.0.7", podAnnotation(k8s.ProxyOpaquePortsAnnotation, "3306"))),
					want: []string{"add {namespace=ns,service=db} 10.42.0.7:3306 id=- hint=opaque " + web0}},
			},
		},
		{
			name:      "skip-inbound-ports and control planes",
			authority: "web.ns.svc.cluster.local:80",
			initial:   objs(web, slice2, newPod("web-0", "10.42.0.7", meshed), newPod("web-1", "10.42.0.8", meshedBy("other"))),
			steps: []step{
				{name: "subscribe: other control plane is not meshed here", want: []string{
					"add " + setWeb + " 10.42.0.7:8080 id=sa.ns hint=h2 " + web0M +
						" 10.42.0.8:8080 id=- hint=- {control_plane_ns=other,deployment=web,pod=web-1,pod_template_hash=abc12,serviceaccount=sa,zone=}",
				}},
				{name: "port skipped inbound", apply: objs(newPod("web-0", "10.42.0.7", meshed, podAnnotation(k8s.ProxyIgnoreInboundPortsAnnotation, "4000,8000-8100"))),
					want: []string{"add " + setWeb + " 10.42.0.7:8080 id=- hint=- " + web0M}},
				{name: "other port skipped", apply: objs(newPod("web-0", "10.42.0.7", meshed, podAnnotation(k8s.ProxyIgnoreInboundPortsAnnotation, "9090"))),
					want: []string{"add " + setWeb + " 10.42.0.7:8080 id=sa.ns hint=h2 " + web0M}},
				{name: "pod unmeshed", apply: objs(newPod("web-0", "10.42.0.7")),
					want: []string{"add " + setWeb + " 10.42.0.7:8080 id=- hint=- " + web0}},
			},
		},
		{
			name:      "endpoint pod arrives after the slice",
			authority: "web.ns.svc.cluster.local:80",
			initial:   objs(web, slice2, newPod("web-1", "10.42.0.8", meshed)),
			steps: []step{
				{name: "subscribe: web-0 unknown yet", want: []string{"add " + setWeb + " 10.42.0.8:8080 id=sa.ns hint=h2 " + web1M}},
				{name: "pod arrives", apply: objs(newPod("web-0", "10.42.0.7", meshed)),
					want: []string{"add " + setWeb + " 10.42.0.7:8080 id=sa.ns hint=h2 " + web0M}},
				{name: "unrelated pod", apply: objs(newPod("web-2", "10.42.0.9", meshed))},
			},
		},
		{
			name:      "endpoints without pods and other owners",
			authority: "ext.ns.svc.cluster.local:5432",
			initial: objs(newSvc("ext", "", svcPort("", 5432, intstr.FromInt(5432))),
				newSlice("ext-a", "ext", slicePorts("=5432"), newEp("192.168.0.5", ""), newEp("10.42.0.7", "db-0")),
				newPod("db-0", "10.42.0.7", meshed, ownedBy("StatefulSet", "db"))),
			steps: []step{
				{name: "subscribe", want: []string{
					"add {namespace=ns,service=ext} 10.42.0.7:5432 id=sa.ns hint=opaque,transport=4143 {control_plane_ns=linkerd,pod=db-0,serviceaccount=sa,statefulset=db,zone=}" +
						" 192.168.0.5:5432 id=- hint=opaque {zone=}",
				}},
				{name: "owner becomes a job", apply: objs(newPod("db-0", "10.42.0.7", meshed, ownedBy("Job", "migrate"))),
					want: []string{"add {namespace=ns,service=ext} 10.42.0.7:5432 id=sa.ns hint=opaque,transport=4143 {control_plane_ns=linkerd,job=migrate,pod=db-0,serviceaccount=sa,zone=}"}},
			},
		},
		{
			name:      "pod hostname",
			authority: "web-1.web.ns.svc.cluster.local:80",
			initial: objs(web, newPod("web-0", "10.42.0.7"), newPod("web-1", "10.42.0.8"),
				newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.7", "web-0", withHostname("web-0")), newEp("10.42.0.8", "web-1", withHostname("web-1")))),
			steps: []step{
				{name: "subscribe", want: []string{"add " + setWeb + " 10.42.0.8:8080 id=- hint=- " + web1}},
			},
		},
		{
			name:      "external name service",
			authority: "web.ns.svc.cluster.local:80",
			initial:   objs(newSvc("web", "", externalName)),
			steps: []step{
				{name: "subscribe", want: []string{"no_endpoints exists=false"}},
				{name: "becomes a cluster IP service", apply: objs(web), want: []string{"no_endpoints exists=true"}},
			},
		},
		{
			name:      "pod IP",
			authority: "10.42.0.7:8080",
			initial:   objs(web, slice2, newPod("web-0", "10.42.0.7", meshed)),
			steps: []step{
				{name: "subscribe", want: []string{"add {namespace=ns} 10.42.0.7:8080 id=sa.ns hint=h2 " + web0M}},
				{name: "pod moves to another IP", apply: objs(newPod("web-0", "10.42.0.99", meshed)), want: []string{"no_endpoints exists=false"}},
				{name: "another pod takes the IP", apply: objs(newPod("web-1", "10.42.0.7")), want: []string{"add {namespace=ns} 10.42.0.7:8080 id=- hint=- " + web1}},
				{name: "pod fails", apply: objs(newPod("web-1", "10.42.0.7", phase("Failed"))), want: []string{"no_endpoints exists=false"}},
				{name: "failed pod deleted", delete: []store.Key{podKey("web-1")}},
			},
		},
		{
			name:      "service cluster IP",
			authority: "10.96.0.10:80",
			initial:   objs(slice2, newPod("web-0", "10.42.0.7"), newPod("web-1", "10.42.0.8")),
			steps: []step{
				{name: "subscribe: unknown IP", want: []string{"no_endpoints exists=false"}},
				{name: "service takes the IP", apply: objs(web), want: []string{
					"add " + setWeb + " 10.42.0.7:8080 id=- hint=- " + web0 + " 10.42.0.8:8080 id=- hint=- " + web1,
				}},
				{name: "endpoint change", apply: objs(newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.42.0.8", "web-1"))),
					want: []string{"remove 10.42.0.7:8080"}},
				{name: "service changes IP", apply: objs(newSvc("web", "10.96.0.11", http80)), want: []string{"no_endpoints exists=false"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.apply(tt.initial...)
			var sub *subscriber
			for i, st := range tt.steps {
				if i == 0 {
					sub = h.subscribe(tt.authority)
				} else {
					if len(st.apply) > 0 {
						h.apply(st.apply...)
					}
					if len(st.delete) > 0 {
						h.delete(st.delete...)
					}
				}
				if got := take(sub); !slices.Equal(got, st.want) {
					t.Fatalf("step %d (%s):\n got %q\nwant %q", i, st.name, got, st.want)
				}
			}
			h.s.reg.unsubscribe(sub)
			if n := len(h.s.reg.watchers); n != 0 {
				t.Errorf("%d watchers left after the last unsubscribe", n)
			}
			if n := len(h.s.reg.deps); n != 0 {
				t.Errorf("%d dependency entries left after the last unsubscribe", n)
			}
		})
	}
}
