package spvalidator

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/linkerd-go/linkerd/controller/destination"
	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/test/cluster"
)

// applyCRDs applies `linkerd install --crds` with the Gateway API's
// HTTPRoute and waits until every CRD is established.
func applyCRDs(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	if out, err := kubectl(c, linkerd(t, c, "install", "--crds", "--set", "installGatewayAPI=true"), "apply", "-f", "-"); err != nil {
		t.Fatalf("applying the CRDs: %v\n%s", err, out)
	}
	for _, crd := range []string{"serviceprofiles.linkerd.io", "trafficsplits.split.smi-spec.io",
		"httproutes.policy.linkerd.io", "httproutes.gateway.networking.k8s.io"} {
		if out, err := kubectl(c, "", "wait", "--for=condition=Established", "--timeout=60s", "crd/"+crd); err != nil {
			t.Fatalf("waiting for CRD %s: %v\n%s", crd, err, out)
		}
	}
}

// splitManifest is a Service, a 2.11 (v1alpha1) ServiceProfile, the
// TrafficSplits and HTTPRoutes of every served version.
func splitManifest(ns string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata: {name: web, namespace: %[1]s}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: linkerd.io/v1alpha1
kind: ServiceProfile
metadata: {name: web.%[1]s.svc.cluster.local, namespace: %[1]s}
spec:
  routes: [{name: GET /api, condition: {method: GET, pathRegex: /api}, isRetryable: true}]
  retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 10s}
---
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: other.%[1]s.svc.cluster.local, namespace: %[1]s}
spec: {routes: [{name: r, condition: {method: GET}}]}
---
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: a-web-split, namespace: %[1]s}
spec: {service: web, backends: [{service: web, weight: 900m}, {service: web-v2, weight: 100m}]}
---
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: other-split, namespace: %[1]s}
spec: {service: other, backends: [{service: other-v1, weight: 1}, {service: other-v2, weight: 1}]}
`, ns)
	for _, v := range []string{"v1alpha1", "v1beta1", "v1beta2", "v1beta3"} {
		fmt.Fprintf(&b, `---
apiVersion: policy.linkerd.io/%[2]s
kind: HTTPRoute
metadata: {name: server-route-%[2]s, namespace: %[1]s}
spec:
  parentRefs: [{name: web, kind: Server, group: policy.linkerd.io}]
  rules: [{matches: [{path: {type: PathPrefix, value: /authors}, method: GET}]}]
`, ns, v)
	}
	fmt.Fprintf(&b, `---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: old-gateway-route, namespace: %[1]s}
spec:
  parentRefs: [{name: gw, kind: Gateway, group: gateway.networking.k8s.io}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-canary, namespace: %[1]s}
spec:
  parentRefs: [{name: web, kind: Service, group: core, port: 80}]
  rules:
  - matches: [{headers: [{name: x-canary, value: "1"}]}]
    backendRefs: [{name: web-v2, port: 80}]
`, ns)
	return b.String()
}

// profileStream serves the Destination API over a store watching c and
// returns a GetProfile stream of authority, read into a channel of one-line
// summaries.
func profileStream(t *testing.T, c *cluster.Cluster, authority string) <-chan string {
	t.Helper()
	st, err := store.NewKube(c.Client, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := k8s.NewDynamic(c.Kubeconfig, "split-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.WatchProfiles(dyn, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.WatchRoutes(dyn, c.Client.Discovery(), 0); err != nil {
		t.Fatal(err)
	}
	srv, err := destination.NewServer(st, destination.Config{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	destinationv1.RegisterDestinationServer(gs, srv)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = st.Run(ctx) })
	wg.Go(func() { _ = srv.Run(ctx) })
	wg.Go(func() { _ = gs.Serve(lis) })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		cancel()
		wg.Wait()
	})
	cs, err := destinationv1.NewDestinationClient(conn).GetProfile(ctx, &destinationv1.GetRequest{Authority: authority})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 16)
	wg.Go(func() {
		defer close(out)
		for {
			p, err := cs.Recv()
			if err != nil {
				return
			}
			var parts []string
			for _, r := range p.GetRoutes() {
				parts = append(parts, "route "+r.GetName())
			}
			for _, d := range p.GetDstOverrides() {
				parts = append(parts, fmt.Sprintf("override %s=%d", d.GetAuthority(), d.GetWeightMilli()))
			}
			for _, br := range p.GetBackendRoutes() {
				for _, d := range br.GetBackends() {
					parts = append(parts, fmt.Sprintf("backend %s %s=%d", br.GetName(), d.GetAuthority(), d.GetWeightMilli()))
				}
			}
			out <- strings.Join(parts, "; ")
		}
	})
	return out
}

// awaitProfile waits up to wait for a profile summary equal to want,
// skipping intermediate ones (the informers deliver the resources one by
// one).
func awaitProfile(t *testing.T, ch <-chan string, wait time.Duration, want string) {
	t.Helper()
	deadline := time.After(wait)
	last := "(none)"
	for {
		select {
		case got, ok := <-ch:
			if !ok {
				t.Fatalf("the profile stream ended; last profile %q, want %q", last, want)
			}
			if got == want {
				return
			}
			last = got
		case <-deadline:
			t.Fatalf("profile after %v:\n got %q\nwant %q", wait, last, want)
		}
	}
}

// TestSplitResourcesOverAPIServer: the CRDs of `linkerd install --crds`
// take a 2.11 ServiceProfile (v1alpha1) and v1alpha2, TrafficSplits of
// both versions and HTTPRoutes of both groups and every version; the
// destination service, watching the API server, streams their merged
// profile and each change of them.
func TestSplitResourcesOverAPIServer(t *testing.T) {
	c := cluster.Start(t)
	cluster.RequireKubectl(t)
	applyCRDs(t, c)
	ns := c.Namespace(t)
	if out, err := kubectl(c, splitManifest(ns), "apply", "-f", "-"); err != nil {
		t.Fatalf("applying the resources: %v\n%s", err, out)
	}
	// v1alpha1 is served from the v1alpha2 storage, and back.
	for _, v := range []string{"v1alpha1", "v1alpha2"} {
		out, err := kubectl(c, "", "get", "serviceprofiles."+v+".linkerd.io", "web."+ns+".svc.cluster.local", "-n", ns, "-o", "jsonpath={.apiVersion} {.spec.routes[0].name}")
		if want := "linkerd.io/" + v + " GET /api"; err != nil || out != want {
			t.Errorf("ServiceProfile as %s: %q (%v), want %q", v, out, err, want)
		}
	}
	out, err := kubectl(c, "", "get", "trafficsplits.v1alpha2.split.smi-spec.io", "other-split", "-n", ns, "-o", "jsonpath={.spec.backends[1].weight}")
	if err != nil || out != "1" {
		t.Errorf("TrafficSplit as v1alpha2: weight %q (%v), want 1", out, err)
	}

	fqdn := "web." + ns + ".svc.cluster.local"
	profiles := profileStream(t, c, fqdn+":80")
	base := fmt.Sprintf("route GET /api; override %[1]s:80=900; override web-v2.%[2]s.svc.cluster.local:80=100; backend %[2]s/web-canary/rules[0] web-v2.%[2]s.svc.cluster.local:80=1000", fqdn, ns)
	awaitProfile(t, profiles, 30*time.Second, base)

	// A canary shift: the stream carries the new weights within seconds.
	start := time.Now()
	shift := fmt.Sprintf(`apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: a-web-split, namespace: %s}
spec: {service: web, backends: [{service: web, weight: 50}, {service: web-v2, weight: 50}]}
`, ns)
	if out, err := kubectl(c, shift, "apply", "-f", "-"); err != nil {
		t.Fatalf("shifting: %v\n%s", err, out)
	}
	awaitProfile(t, profiles, 5*time.Second, strings.NewReplacer("=900", "=50000", "v2."+ns+".svc.cluster.local:80=100;", "v2."+ns+".svc.cluster.local:80=50000;").Replace(base))
	t.Logf("TrafficSplit change reached the stream %v after kubectl apply began", time.Since(start).Round(time.Millisecond))

	// A profile change reaches the subscriber too; deleting the split and
	// the route leaves the profile alone.
	if out, err := kubectl(c, "", "delete", "trafficsplit", "a-web-split", "-n", ns); err != nil {
		t.Fatalf("deleting the split: %v\n%s", err, out)
	}
	if out, err := kubectl(c, "", "delete", "httproutes.gateway.networking.k8s.io", "web-canary", "-n", ns); err != nil {
		t.Fatalf("deleting the route: %v\n%s", err, out)
	}
	awaitProfile(t, profiles, 5*time.Second, "route GET /api")
	edit := strings.Replace(splitManifest(ns), "name: GET /api,", "name: GET /api/v2,", 1)
	if out, err := kubectl(c, edit, "apply", "-f", "-"); err != nil {
		t.Fatalf("editing the profile: %v\n%s", err, out)
	}
	awaitProfile(t, profiles, 5*time.Second, strings.Replace(base, "route GET /api;", "route GET /api/v2;", 1))

	// What the CRD schemas refuse, naming the field.
	for _, bad := range []struct{ name, doc, want string }{
		{"split without backends", fmt.Sprintf(`apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: bad, namespace: %s}
spec: {service: web}`, ns), "spec.backends"},
		{"route with a bad path type", fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad, namespace: %s}
spec: {rules: [{matches: [{path: {type: Glob, value: /x}}]}]}`, ns), "spec.rules[0].matches[0].path.type"},
	} {
		out, err := kubectl(c, bad.doc, "apply", "-f", "-")
		if err == nil || !strings.Contains(out, bad.want) {
			t.Errorf("%s: %v, want refused naming %s:\n%s", bad.name, err, bad.want, out)
		}
	}
}
