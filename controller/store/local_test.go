package store

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/linkerd-go/linkerd/internal/testkit"
)

// recorder collects events as "type Kind/ns/name" strings.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) handle(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev.Type.String()+" "+ev.Key().String())
}

// take returns and clears the recorded events.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

const svcWeb = `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: emojivoto
spec:
  clusterIP: 10.96.0.10
  ports:
  - name: http
    port: 80
    targetPort: http
`

const sliceWeb = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: emojivoto
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- name: http
  port: 8080
endpoints:
- addresses: ["10.42.0.7"]
  targetRef: {kind: Pod, name: web-0, namespace: emojivoto}
`

const podWeb = `apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: emojivoto
  annotations:
    config.linkerd.io/opaque-ports: "3306"
    unrelated.example.com/big: "dropped"
spec:
  serviceAccountName: web
  containers:
  - name: app
    image: web:1
status:
  phase: Running
  podIP: 10.42.0.7
`

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newLocal(t *testing.T, dir string) (*Local, *recorder) {
	t.Helper()
	l, err := NewLocal(dir, 10*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	l.AddHandler(rec.handle)
	return l, rec
}

func assertEvents(t *testing.T, step string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: events\n got %q\nwant %q", step, got, want)
	}
}

// TestLocalScanSequence drives a Local store through a sequence of file
// changes and checks the exact events and the reader's answers after each.
func TestLocalScanSequence(t *testing.T) {
	dir := t.TempDir()
	l, rec := newLocal(t, dir)

	l.Scan()
	assertEvents(t, "empty dir", rec.take(), nil)

	writeFile(t, dir, "app.yaml", svcWeb+"---\n"+sliceWeb+"---\n# just a comment\n---\n"+podWeb)
	l.Scan()
	assertEvents(t, "add", rec.take(), []string{
		"added EndpointSlice/emojivoto/web-abc",
		"added Pod/emojivoto/web-0",
		"added Service/emojivoto/web",
	})
	if _, ok := l.Service("emojivoto", "web"); !ok {
		t.Error("service not found")
	}
	if got := l.ServicesByIP(netip.MustParseAddr("10.96.0.10")); len(got) != 1 || got[0].Name != "web" {
		t.Errorf("ServicesByIP = %v", got)
	}
	if got := l.EndpointSlices("emojivoto", "web"); len(got) != 1 || got[0].Name != "web-abc" {
		t.Errorf("EndpointSlices = %v", got)
	}
	pods := l.PodsByIP(netip.MustParseAddr("10.42.0.7"))
	if len(pods) != 1 || pods[0].Name != "web-0" {
		t.Fatalf("PodsByIP = %v", pods)
	}
	if _, ok := pods[0].Annotations["unrelated.example.com/big"]; ok {
		t.Error("local store kept an annotation StripPod drops")
	}
	if pods[0].Spec.ServiceAccountName != "web" {
		t.Error("service account lost")
	}

	// Rescanning an unchanged directory delivers nothing.
	l.Scan()
	assertEvents(t, "rescan", rec.take(), nil)

	// Change one object in place: only it is updated.
	writeFile(t, dir, "app.yaml", svcWeb+"---\n"+strings.Replace(sliceWeb, "10.42.0.7", "10.42.0.8", 1)+"---\n"+podWeb)
	l.Scan()
	assertEvents(t, "update slice", rec.take(), []string{"updated EndpointSlice/emojivoto/web-abc"})

	// A broken file keeps its previous objects.
	writeFile(t, dir, "app.yaml", svcWeb+"---\n  bad: [yaml\n")
	l.Scan()
	assertEvents(t, "broken file", rec.take(), nil)
	if _, ok := l.Pod("emojivoto", "web-0"); !ok {
		t.Error("broken file dropped its objects")
	}

	// A second file in a subdirectory; hidden files are ignored.
	writeFile(t, dir, "sub/other.yml", strings.ReplaceAll(svcWeb, "name: web", "name: api"))
	writeFile(t, dir, ".hidden.yaml", strings.ReplaceAll(svcWeb, "name: web", "name: hidden"))
	writeFile(t, dir, "notes.txt", svcWeb)
	l.Scan()
	assertEvents(t, "second file", rec.take(), []string{"added Service/emojivoto/api"})

	// Fixing the file to drop the pod and slice deletes them.
	writeFile(t, dir, "app.yaml", svcWeb)
	l.Scan()
	assertEvents(t, "shrink", rec.take(), []string{
		"deleted EndpointSlice/emojivoto/web-abc",
		"deleted Pod/emojivoto/web-0",
	})
	if len(l.PodsByIP(netip.MustParseAddr("10.42.0.7"))) != 0 {
		t.Error("deleted pod still indexed by IP")
	}

	// Removing files deletes their objects.
	if err := os.RemoveAll(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "app.yaml")); err != nil {
		t.Fatal(err)
	}
	l.Scan()
	assertEvents(t, "remove files", rec.take(), []string{
		"deleted Service/emojivoto/api",
		"deleted Service/emojivoto/web",
	})
}

func TestLocalDuplicateLaterFileWins(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", svcWeb)
	writeFile(t, dir, "b.yaml", strings.Replace(svcWeb, "10.96.0.10", "10.96.0.11", 1))
	l, rec := newLocal(t, dir)
	l.Scan()
	assertEvents(t, "dup", rec.take(), []string{"added Service/emojivoto/web"})
	svc, _ := l.Service("emojivoto", "web")
	if svc.Spec.ClusterIP != "10.96.0.11" {
		t.Errorf("clusterIP = %s, want the later file's 10.96.0.11", svc.Spec.ClusterIP)
	}
	// Removing the later file falls back to the earlier definition.
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	l.Scan()
	assertEvents(t, "fallback", rec.take(), []string{"updated Service/emojivoto/web"})
	svc, _ = l.Service("emojivoto", "web")
	if svc.Spec.ClusterIP != "10.96.0.10" {
		t.Errorf("clusterIP = %s, want 10.96.0.10", svc.Spec.ClusterIP)
	}
}

// TestLocalRunPolls checks that Run notices file changes by itself, well
// within a second.
func TestLocalRunPolls(t *testing.T) {
	dir := t.TempDir()
	l, rec := newLocal(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	testkit.EventuallyTrue(t, 10*time.Second, "sync", l.HasSynced)
	// Several quick rewrites of the same file, same size: the last must win
	// even when the modification time does not change.
	for i := range 3 {
		writeFile(t, dir, "svc.yaml", strings.Replace(svcWeb, "10.96.0.10", fmt.Sprintf("10.96.0.1%d", i), 1))
	}
	var events []string
	testkit.EventuallyTrue(t, 10*time.Second, "service with the last IP", func() bool {
		events = append(events, rec.take()...)
		svc, ok := l.Service("emojivoto", "web")
		// The store's state changes before the handlers are called.
		return ok && svc.Spec.ClusterIP == "10.96.0.12" && len(events) > 0
	})
	if events[0] != "added Service/emojivoto/web" {
		t.Errorf("events = %q", events)
	}
	if err := os.Remove(filepath.Join(dir, "svc.yaml")); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyTrue(t, 10*time.Second, "deletion", func() bool {
		_, ok := l.Service("emojivoto", "web")
		return !ok
	})
}

func TestNewLocalErrors(t *testing.T) {
	if _, err := NewLocal(filepath.Join(t.TempDir(), "missing"), 0, nil); err == nil {
		t.Error("missing directory accepted")
	}
	f := filepath.Join(t.TempDir(), "file")
	writeFile(t, filepath.Dir(f), "file", "")
	if _, err := NewLocal(f, 0, nil); err == nil {
		t.Error("regular file accepted as directory")
	}
}

func TestDecodeObjects(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // Kind/ns/name
		ignored int
		wantErr string
	}{
		{name: "empty", in: ""},
		{name: "only separators", in: "---\n---\n"},
		{name: "multi", in: svcWeb + "---\n" + sliceWeb + "\n---\n" + podWeb, want: []string{"Service/emojivoto/web", "EndpointSlice/emojivoto/web-abc", "Pod/emojivoto/web-0"}},
		{name: "default namespace", in: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", want: []string{"Pod/default/p"}},
		{name: "other kinds ignored", in: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", ignored: 2},
		{name: "wrong group", in: "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: e}\n", ignored: 1},
		{name: "list", in: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a, namespace: x}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n", want: []string{"Service/x/a"}, ignored: 1},
		{name: "json", in: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"j","namespace":"n"}}`, want: []string{"Service/n/j"}},
		{name: "no kind", in: "metadata: {name: x}\n", wantErr: "no kind"},
		{name: "no apiVersion", in: "kind: Service\nmetadata: {name: x}\n", wantErr: "Service has no apiVersion"},
		{name: "no name", in: "apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n", wantErr: "without metadata.name"},
		{name: "bad type", in: "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: 5}\n", wantErr: "document 1: Service"},
		{name: "bad yaml second doc", in: svcWeb + "---\nkind: [\n", wantErr: "document 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeObjects([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, o := range got.Objects {
				keys = append(keys, string(kindOf(o))+"/"+o.GetNamespace()+"/"+o.GetName())
			}
			if !slices.Equal(keys, tt.want) {
				t.Errorf("objects = %q, want %q", keys, tt.want)
			}
			if got.Ignored != tt.ignored {
				t.Errorf("ignored = %d, want %d", got.Ignored, tt.ignored)
			}
		})
	}
}

func TestDecodeObjectsFields(t *testing.T) {
	got, err := DecodeObjects([]byte(svcWeb + "---\n" + sliceWeb))
	if err != nil {
		t.Fatal(err)
	}
	svc := got.Objects[0].(*corev1.Service)
	if svc.Spec.Ports[0].TargetPort.StrVal != "http" || svc.Spec.Ports[0].Port != 80 {
		t.Errorf("service port = %+v", svc.Spec.Ports[0])
	}
	es := got.Objects[1].(*discoveryv1.EndpointSlice)
	if *es.Ports[0].Port != 8080 || es.Endpoints[0].Addresses[0] != "10.42.0.7" || es.Endpoints[0].TargetRef.Name != "web-0" {
		t.Errorf("slice = %+v", es)
	}
}
