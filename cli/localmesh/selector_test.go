package localmesh

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/linkerd-go/linkerd/controller/store"
)

func TestSelectorSlices(t *testing.T) {
	dir := t.TempDir()
	applied := `apiVersion: v1
kind: Service
metadata: {name: shop, namespace: demo}
spec:
  clusterIP: 10.96.0.50
  selector: {app: web, tier: front}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: admin, port: 9000}
---
apiVersion: v1
kind: Service
metadata: {name: manual, namespace: demo}
spec:
  clusterIP: 10.96.0.51
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: manual-1, namespace: demo, labels: {kubernetes.io/service-name: manual}}
addressType: IPv4
endpoints: []
`
	if err := os.WriteFile(filepath.Join(dir, appliedPrefix+"shop.yaml"), []byte(applied), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &State{Services: map[string]netip.Addr{}, Workloads: []*Workload{
		{Name: "web-2", Namespace: "demo", Port: 8080, IP: netip.MustParseAddr("10.250.0.6"), Labels: map[string]string{"app": "web", "tier": "front"}},
		{Name: "web-1", Namespace: "demo", Port: 8080, IP: netip.MustParseAddr("10.250.0.5"), Labels: map[string]string{"app": "web", "tier": "front", "x": "y"}},
		{Name: "web-back", Namespace: "demo", Port: 8080, IP: netip.MustParseAddr("10.250.0.7"), Labels: map[string]string{"app": "web", "tier": "back"}},
		{Name: "web-other", Namespace: "other", Port: 8080, IP: netip.MustParseAddr("10.250.0.8"), Labels: map[string]string{"app": "web", "tier": "front"}},
	}}
	notReady := func(w *Workload) bool { return w.Name != "web-2" }
	if err := writeStore(dir, s, ControlPlaneNamespace, notReady); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, selectorPrefix+"demo-shop.yaml"))
	if err != nil {
		t.Fatalf("no EndpointSlice for the selector Service: %v", err)
	}
	dec, err := store.DecodeObjects(b)
	if err != nil || len(dec.Objects) != 1 {
		t.Fatalf("decode: %v, %d objects", err, len(dec.Objects))
	}
	slice, ok := dec.Objects[0].(*discoveryv1.EndpointSlice)
	if !ok || slice.Labels[discoveryv1.LabelServiceName] != "shop" || slice.Namespace != "demo" {
		t.Fatalf("slice %#v", dec.Objects[0])
	}
	ports := map[string]int32{}
	for _, p := range slice.Ports {
		ports[*p.Name] = *p.Port
	}
	if ports["http"] != 8080 || ports["admin"] != 9000 || len(ports) != 2 {
		t.Errorf("ports %v, want http on the targetPort 8080 and admin on 9000", ports)
	}
	var got []string
	for _, e := range slice.Endpoints {
		got = append(got, e.Addresses[0]+"/"+e.TargetRef.Name+"/"+map[bool]string{true: "ready", false: "not-ready"}[*e.Conditions.Ready])
	}
	want := []string{"10.250.0.5/web-1/ready", "10.250.0.6/web-2/not-ready"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("endpoints %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, selectorPrefix+"demo-manual.yaml")); !os.IsNotExist(err) {
		t.Errorf("a Service with its own EndpointSlice got a generated one: %v", err)
	}

	// The Service removed: its slice goes.
	if err := os.Remove(filepath.Join(dir, appliedPrefix+"shop.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := writeStore(dir, s, ControlPlaneNamespace, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, selectorPrefix+"demo-shop.yaml")); !os.IsNotExist(err) {
		t.Errorf("the slice of a removed Service stayed: %v", err)
	}
}
