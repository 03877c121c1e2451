package localmesh

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/internal/testkit"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

func TestFirstFree(t *testing.T) {
	p := netip.MustParsePrefix("10.250.0.0/29") // .0 .. .7
	a := netip.MustParseAddr
	tests := []struct {
		name string
		skip int
		used []string
		want string // "" means an error
	}{
		{"empty", 2, nil, "10.250.0.2"},
		{"skips used", 2, []string{"10.250.0.2", "10.250.0.3"}, "10.250.0.4"},
		{"fills a hole", 2, []string{"10.250.0.2", "10.250.0.4"}, "10.250.0.3"},
		{"last before broadcast", 2, []string{"10.250.0.2", "10.250.0.3", "10.250.0.4", "10.250.0.5"}, "10.250.0.6"},
		{"full", 2, []string{"10.250.0.2", "10.250.0.3", "10.250.0.4", "10.250.0.5", "10.250.0.6"}, ""},
		{"skip past the end", 9, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			used := map[netip.Addr]bool{}
			for _, u := range tt.used {
				used[a(u)] = true
			}
			got, err := firstFree(p, tt.skip, used)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || got != a(tt.want) {
				t.Fatalf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestAllocateServiceIP(t *testing.T) {
	s := &State{ServiceCIDR: netip.MustParsePrefix(DefaultServiceCIDR)}
	ip1, isNew, err := s.allocateServiceIP("demo", "web", nil)
	if err != nil || !isNew || ip1.String() != "10.96.0.10" {
		t.Fatalf("first: %v %v %v", ip1, isNew, err)
	}
	again, isNew, err := s.allocateServiceIP("demo", "web", nil)
	if err != nil || isNew || again != ip1 {
		t.Fatalf("same service again: %v %v %v, want %v not new", again, isNew, err, ip1)
	}
	ip2, isNew, err := s.allocateServiceIP("other", "web", map[netip.Addr]bool{netip.MustParseAddr("10.96.0.11"): true})
	if err != nil || !isNew || ip2 == ip1 {
		t.Fatalf("other namespace: %v %v %v", ip2, isNew, err)
	}
}

func TestAllocatePodIP(t *testing.T) {
	s := &State{Subnet: netip.MustParsePrefix("10.250.0.0/24")}
	s.Workloads = []*Workload{{IP: netip.MustParseAddr("10.250.0.2")}, {IP: netip.MustParseAddr("10.250.0.4")}}
	got, err := s.allocatePodIP()
	if err != nil || got.String() != "10.250.0.3" {
		t.Fatalf("got %v %v, want 10.250.0.3", got, err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if s, err := loadState(path); s != nil || err != nil {
		t.Fatalf("missing state: %v %v, want nil, nil", s, err)
	}
	s := &State{Prefix: "l5dl-", SwitchNS: "l5dl-switch", Subnet: netip.MustParsePrefix("10.250.0.0/24"),
		ServiceCIDR: netip.MustParsePrefix(DefaultServiceCIDR), Services: map[string]netip.Addr{"demo/web": netip.MustParseAddr("10.96.0.10")},
		Workloads: []*Workload{{Name: "web", Namespace: "demo", IP: netip.MustParseAddr("10.250.0.4"),
			Procs: []*Proc{{Role: "proxy", Args: []string{"nsenter"}, PID: 42, StartTime: 7}}}}}
	if err := saveState(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Workloads[0].Procs[0].PID != 42 || got.Services["demo/web"].String() != "10.96.0.10" || got.Subnet != s.Subnet {
		t.Fatalf("round trip lost data: %+v", got)
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(path); err == nil {
		t.Fatal("corrupt state: want an error")
	}
}

func TestNamePrefix(t *testing.T) {
	if got := namePrefix(DefaultStateDir); got != "l5dl-" {
		t.Errorf("default: %q", got)
	}
	if got := namePrefix(DefaultStateDir + "/"); got != "l5dl-" {
		t.Errorf("default with slash: %q", got)
	}
	a, b := namePrefix("/tmp/a"), namePrefix("/tmp/b")
	if a == b || !strings.HasPrefix(a, "l5dl") || strings.HasPrefix(a, "l5dl-") {
		t.Errorf("other dirs: %q %q: want distinct prefixes not overlapping l5dl-", a, b)
	}
}

func TestParseStartTime(t *testing.T) {
	stat := func(comm string) string {
		// pid (comm) state then fields 4..22 (start time 12345) and more.
		f := []string{"S"}
		for i := 4; i <= 21; i++ {
			f = append(f, "0")
		}
		f = append(f, "12345", "99")
		return "17 (" + comm + ") " + strings.Join(f, " ") + "\n"
	}
	for _, comm := range []string{"sleep", "a b) c", "x)"} {
		got, err := parseStartTime(stat(comm))
		if err != nil || got != 12345 {
			t.Errorf("comm %q: %v %v, want 12345", comm, got, err)
		}
	}
	for _, bad := range []string{"", "17 (x", "17 (x) S 1 2"} {
		if _, err := parseStartTime(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestStartAliveStop(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Fatal("sleep(1) is needed")
	}
	dir := t.TempDir()
	p := &Proc{Role: "sleeper", Args: []string{"sh", "-c", "echo started; exec sleep 60"}, Log: filepath.Join(dir, "log")}
	if err := start(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(p.PID, syscall.SIGKILL) })
	if !alive(p) {
		t.Fatal("just started: not alive")
	}
	testkit.EventuallyTrue(t, 10*time.Second, "the process's output to reach its log", func() bool {
		b, _ := os.ReadFile(p.Log)
		return strings.Contains(string(b), "started")
	})
	if pgid, err := syscall.Getpgid(p.PID); err != nil || pgid != p.PID {
		t.Fatalf("pgid %d %v, want its own group %d", pgid, err, p.PID)
	}
	// A different start time is another process that reused the pid.
	other := *p
	other.StartTime++
	if alive(&other) {
		t.Fatal("alive with a wrong start time")
	}
	if err := stop(context.Background(), &other); err != nil {
		t.Fatal(err)
	}
	if !alive(p) {
		t.Fatal("stop of a reused pid killed the process")
	}
	if err := stop(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if alive(p) {
		t.Fatal("still alive after stop")
	}
}

func TestHostsFile(t *testing.T) {
	svcs := map[string]netip.Addr{
		"demo/web":    netip.MustParseAddr("10.96.0.10"),
		"other/items": netip.MustParseAddr("10.96.0.11"),
	}
	got := hostsFile("demo", "bot", netip.MustParseAddr("10.250.0.7"), svcs, "cluster.local")
	for _, want := range []string{
		"127.0.0.1\tlocalhost\n",
		"10.250.0.7\tbot\n",
		"10.96.0.10\tweb.demo.svc.cluster.local web.demo.svc web.demo web\n",
		// No short name outside the pod's namespace.
		"10.96.0.11\titems.other.svc.cluster.local items.other.svc items.other\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("hosts file lacks %q:\n%s", want, got)
		}
	}
}

func TestWriteHostsKeepsInode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	if err := writeHosts(path, "a long first version\n"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	if err := writeHosts(path, "short\n"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Fatal("hosts file replaced: a bind mount would keep the old one")
	}
	if b, _ := os.ReadFile(path); string(b) != "short\n" {
		t.Fatalf("content %q", b)
	}
}

func TestServiceManifestDecodes(t *testing.T) {
	pods := []*Workload{
		{Name: "web-1", Namespace: "demo", ServiceAccount: "web", Port: 8080, IP: netip.MustParseAddr("10.250.0.4")},
		{Name: "web-2", Namespace: "demo", ServiceAccount: "web", Port: 8080, IP: netip.MustParseAddr("10.250.0.5"),
			Labels: map[string]string{"app": "shop", "example.com/tier": "front"}},
	}
	wantLabels := []map[string]string{
		{"app": "web", "linkerd.io/control-plane-ns": "linkerd"}, // from before Workload.Labels
		{"app": "shop", "example.com/tier": "front", "linkerd.io/control-plane-ns": "linkerd"},
	}
	for _, tc := range []struct {
		name string
		pods []*Workload
	}{{"two pods", pods}, {"no pods", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			dec, err := store.DecodeObjects([]byte(serviceManifest("demo", "web", netip.MustParseAddr("10.96.0.10"), "linkerd", tc.pods, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if len(dec.Objects) != 2+len(tc.pods) || dec.Ignored != 0 {
				t.Fatalf("%d objects, %d ignored", len(dec.Objects), dec.Ignored)
			}
			svc, ok := dec.Objects[0].(*corev1.Service)
			if !ok || svc.Spec.ClusterIP != "10.96.0.10" || svc.Namespace != "demo" {
				t.Fatalf("service: %#v", dec.Objects[0])
			}
			slice, ok := dec.Objects[1].(*discoveryv1.EndpointSlice)
			if !ok || slice.Labels["kubernetes.io/service-name"] != "web" || len(slice.Endpoints) != len(tc.pods) {
				t.Fatalf("slice: %#v", dec.Objects[1])
			}
			for i, w := range tc.pods {
				pod, ok := dec.Objects[2+i].(*corev1.Pod)
				if !ok || pod.Status.PodIP != w.IP.String() || pod.Spec.ServiceAccountName != "web" || pod.Labels["linkerd.io/control-plane-ns"] != "linkerd" {
					t.Fatalf("pod %d: %#v", i, dec.Objects[2+i])
				}
				if !reflect.DeepEqual(pod.Labels, wantLabels[i]) {
					t.Errorf("pod %d labels %v, want %v", i, pod.Labels, wantLabels[i])
				}
				// Owned by the Deployment named like the workload, so that
				// destination labels its endpoints (dst_deployment).
				if o := k8s.PodOwner(pod); o.Kind != "deployment" || o.Name != w.Name {
					t.Fatalf("pod %d owner: %+v, want deployment %s", i, o, w.Name)
				}
				if slice.Endpoints[i].Addresses[0] != w.IP.String() || slice.Endpoints[i].TargetRef.Name != w.Name {
					t.Fatalf("endpoint %d: %#v", i, slice.Endpoints[i])
				}
			}
		})
	}
}

func TestWriteStore(t *testing.T) {
	dir := t.TempDir()
	s := &State{Services: map[string]netip.Addr{"demo/web": netip.MustParseAddr("10.96.0.10")},
		Workloads: []*Workload{{Name: "web", Namespace: "demo", Service: "web", Port: 8080, IP: netip.MustParseAddr("10.250.0.4")}}}
	// A user's file and a stale generated one.
	if err := os.WriteFile(filepath.Join(dir, appliedPrefix+"x.yaml"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, storeFileName("demo", "gone")), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeStore(dir, s, "linkerd", nil); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{appliedPrefix + "x.yaml", storeFileName("demo", "web")}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("store holds %v, want %v", names, want)
	}
}

func TestNotRoot(t *testing.T) {
	origUID, origStatus := geteuid, procStatus
	t.Cleanup(func() { geteuid, procStatus = origUID, origStatus })
	for _, tt := range []struct {
		name   string
		uid    int
		status string
		want   string // in the error, besides ErrNotRoot
	}{
		{"not root", 1000, "CapEff:\t0000000000000000\n", ""},
		{"root without capabilities", 0, "Name:\tx\nCapEff:\t0000000000000000\n", "missing CAP_NET_ADMIN,CAP_SYS_ADMIN"},
		{"root without CAP_SYS_ADMIN", 0, "CapEff:\t0000000000001000\n", "missing CAP_SYS_ADMIN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			geteuid = func() int { return tt.uid }
			procStatus = func() ([]byte, error) { return []byte(tt.status), nil }
			m, err := New(Config{StateDir: filepath.Join(t.TempDir(), "state"), Supervisor: []string{"true"}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, ErrNotRoot) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
					t.Errorf("%s: %v, want ErrNotRoot on one line mentioning %q", op, err, tt.want)
				}
			}
			// Up lists every missing prerequisite, one per line, root first.
			if err := m.Up(ctx); !errors.Is(err, ErrNotRoot) || !errors.Is(err, ErrPrerequisites) || !strings.Contains(strings.Split(err.Error(), "\n")[1], tt.want) {
				t.Errorf("Up: %v, want ErrPrerequisites and ErrNotRoot, the first problem mentioning %q", err, tt.want)
			}
			_, err = m.Run(ctx, RunSpec{Name: "web", Namespace: "demo", Command: []string{"true"}})
			check("Run", err)
			_, err = m.Apply(ctx, "x.yaml", strings.NewReader("kind: Service\n"))
			check("Apply", err)
			_, err = m.Status(ctx)
			check("Status", err)
			check("Supervise", m.Supervise(ctx, "demo", "web"))
			check("Down", m.Down(ctx))
			if _, err := os.Stat(m.StateDir()); !os.IsNotExist(err) {
				t.Fatalf("state dir created without root: %v", err)
			}
		})
	}
}

func TestMissingCaps(t *testing.T) {
	for _, tt := range []struct {
		status, want string
	}{
		{"CapEff:\t000001ffffffffff\n", ""},
		{"CapInh:\t0\nCapEff:\t0000000000201000\nCapBnd:\t0\n", ""},
		{"CapEff:\t0000000000200000\n", "CAP_NET_ADMIN"},
		{"CapEff:\t0000000000000000\n", "CAP_NET_ADMIN,CAP_SYS_ADMIN"},
		{"CapEff:\tzz\n", "CAP_NET_ADMIN,CAP_SYS_ADMIN"},
		{"", "CAP_NET_ADMIN,CAP_SYS_ADMIN"},
	} {
		if got := missingCaps(tt.status, capNetAdmin, capSysAdmin); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.status, got, tt.want)
		}
	}
}

func TestServiceManifestReadiness(t *testing.T) {
	pods := []*Workload{
		{Name: "web-1", Namespace: "demo", ServiceAccount: "web", Port: 8080, IP: netip.MustParseAddr("10.250.0.4")},
		{Name: "web-2", Namespace: "demo", ServiceAccount: "web", Port: 8080, IP: netip.MustParseAddr("10.250.0.5")},
	}
	dec, err := store.DecodeObjects([]byte(serviceManifest("demo", "web", netip.MustParseAddr("10.96.0.10"), "linkerd", pods,
		func(w *Workload) bool { return w.Name == "web-2" })))
	if err != nil {
		t.Fatal(err)
	}
	slice := dec.Objects[1].(*discoveryv1.EndpointSlice)
	for i, want := range []bool{false, true} {
		if got := slice.Endpoints[i].Conditions.Ready; got == nil || *got != want {
			t.Errorf("endpoint %d ready %v, want %v", i, got, want)
		}
	}
	// The not-ready pod stays in the store, for its identity.
	if len(dec.Objects) != 4 {
		t.Errorf("%d objects, want the Service, the slice and 2 Pods", len(dec.Objects))
	}
}

func TestStoreServices(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"local-demo-web.yaml": serviceManifest("demo", "web", netip.MustParseAddr("10.96.0.10"), "linkerd", nil, nil),
		"applied-a.yaml":      "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.96.1.1}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: headless, namespace: demo}\nspec: {clusterIP: None}\n",
		"applied-broken.yaml": "kind: Service\nmetadata: [\n",
		".hidden.yaml":        "apiVersion: v1\nkind: Service\nmetadata: {name: h}\nspec: {clusterIP: 10.96.1.2}\n",
		"notes.txt":           "apiVersion: v1\nkind: Service\nmetadata: {name: t}\nspec: {clusterIP: 10.96.1.3}\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := storeServices(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]netip.Addr{"demo/web": netip.MustParseAddr("10.96.0.10"), "default/a": netip.MustParseAddr("10.96.1.1")}
	if len(got) != len(want) || got["demo/web"] != want["demo/web"] || got["default/a"] != want["default/a"] {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestAssignClusterIPs(t *testing.T) {
	cidr := netip.MustParsePrefix(DefaultServiceCIDR)
	existing := map[string]netip.Addr{"demo/kept": netip.MustParseAddr("10.96.0.42")}
	for _, tt := range []struct {
		name     string
		in       string
		wantIPs  map[string]string // "ns/name" -> cluster IP after assignment
		same     bool              // the manifest is returned untouched
		wantErr  string
		allocs   int
		extraDoc string // a document kind that must survive re-encoding
	}{
		{name: "has one", in: "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: demo}\nspec: {clusterIP: 10.96.5.5}\n",
			wantIPs: map[string]string{"demo/a": "10.96.5.5"}, same: true},
		{name: "new", in: "apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: demo}\nspec:\n  ports: [{port: 80}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
			wantIPs: map[string]string{"demo/b": "10.96.0.100"}, allocs: 1, extraDoc: "kind: Deployment"},
		{name: "no spec, default namespace", in: "apiVersion: v1\nkind: Service\nmetadata: {name: c}\n",
			wantIPs: map[string]string{"default/c": "10.96.0.100"}, allocs: 1},
		{name: "re-applied keeps its IP", in: "apiVersion: v1\nkind: Service\nmetadata: {name: kept, namespace: demo}\nspec: {}\n",
			wantIPs: map[string]string{"demo/kept": "10.96.0.42"}},
		{name: "headless", in: "apiVersion: v1\nkind: Service\nmetadata: {name: h}\nspec: {clusterIP: None}\n", same: true},
		{name: "external name", in: "apiVersion: v1\nkind: Service\nmetadata: {name: e}\nspec: {type: ExternalName, externalName: example.com}\n", same: true},
		{name: "outside the range", in: "apiVersion: v1\nkind: Service\nmetadata: {name: o}\nspec: {clusterIP: 192.168.1.1}\n", wantErr: "not in the local mesh's Service range"},
		{name: "not an address", in: "apiVersion: v1\nkind: Service\nmetadata: {name: o}\nspec: {clusterIP: nope}\n", wantErr: "not in the local mesh's Service range"},
		{name: "JSON", in: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"j","namespace":"demo"},"spec":{}}`,
			wantIPs: map[string]string{"demo/j": "10.96.0.100"}, allocs: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			allocs := 0
			out, err := assignClusterIPs([]byte(tt.in), cidr, existing, func(string) (netip.Addr, error) {
				allocs++
				return netip.MustParseAddr("10.96.0.100"), nil
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("%v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.same && string(out) != tt.in {
				t.Errorf("manifest rewritten:\n%s", out)
			}
			if allocs != tt.allocs {
				t.Errorf("%d allocations, want %d", allocs, tt.allocs)
			}
			if tt.extraDoc != "" && !strings.Contains(string(out), tt.extraDoc) {
				t.Errorf("lost a document:\n%s", out)
			}
			dec, err := store.DecodeObjects(out)
			if err != nil {
				t.Fatalf("result does not decode: %v\n%s", err, out)
			}
			for _, obj := range dec.Objects {
				svc := obj.(*corev1.Service)
				if want, ok := tt.wantIPs[svc.Namespace+"/"+svc.Name]; ok && svc.Spec.ClusterIP != want {
					t.Errorf("%s/%s cluster IP %q, want %s", svc.Namespace, svc.Name, svc.Spec.ClusterIP, want)
				}
			}
		})
	}
}

func TestLogTail(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, content, want string
	}{
		{"short", "a\nb\n", "a | b"},
		{"long", "1\n2\n3\n4\n5\n", "3 | 4 | 5"},
		{"empty", "", "(empty log)"},
	} {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := logTail(path, 3); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := logTail(filepath.Join(dir, "missing"), 3); !strings.HasPrefix(got, "(no log") {
		t.Errorf("missing: %q", got)
	}
}

// TestServiceManifestPorts: each port of the workloads is a port of the
// Service and of its EndpointSlice, under the same name (destination
// matches them by name).
func TestServiceManifestPorts(t *testing.T) {
	for _, tc := range []struct {
		name string
		pods []*Workload
		want []int32
	}{
		{"one port, state from before Ports", []*Workload{{Name: "a", Namespace: "demo", Port: 8080, IP: netip.MustParseAddr("10.250.0.4")}}, []int32{8080}},
		{"two ports", []*Workload{{Name: "a", Namespace: "demo", Port: 8080, Ports: []int{8080, 9090}, IP: netip.MustParseAddr("10.250.0.4")}}, []int32{8080, 9090}},
		{"pods with different ports", []*Workload{
			{Name: "a", Namespace: "demo", Port: 8080, Ports: []int{8080, 9090}, IP: netip.MustParseAddr("10.250.0.4")},
			{Name: "b", Namespace: "demo", Port: 7070, Ports: []int{7070, 8080}, IP: netip.MustParseAddr("10.250.0.5")},
		}, []int32{8080, 9090, 7070}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dec, err := store.DecodeObjects([]byte(serviceManifest("demo", "web", netip.MustParseAddr("10.96.0.10"), "linkerd", tc.pods, nil)))
			if err != nil {
				t.Fatal(err)
			}
			svc := dec.Objects[0].(*corev1.Service)
			slice := dec.Objects[1].(*discoveryv1.EndpointSlice)
			if len(svc.Spec.Ports) != len(tc.want) || len(slice.Ports) != len(tc.want) {
				t.Fatalf("service ports %+v, slice ports %+v; want %v", svc.Spec.Ports, slice.Ports, tc.want)
			}
			for i, p := range tc.want {
				sp, ep := svc.Spec.Ports[i], slice.Ports[i]
				if sp.Port != p || sp.TargetPort.IntValue() != int(p) || ep.Port == nil || *ep.Port != p || ep.Name == nil || *ep.Name != sp.Name {
					t.Errorf("port %d: service %+v, slice %+v; want %d under one name", i, sp, ep, p)
				}
			}
		})
	}
}
