package destination

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd/controller/store"
	spv1alpha2 "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestProfileFrom(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "web.emojivoto.svc.cluster.local", Namespace: "emojivoto"}
	tests := []struct {
		name    string
		spec    spv1alpha2.Spec
		annot   map[string]string
		want    string // prototext, compared without spaces
		wantErr string
	}{{
		name: "routes, budget and overrides",
		spec: spv1alpha2.Spec{
			Routes: []*spv1alpha2.RouteSpec{{
				Name:      "GET /api/{id}",
				Condition: &spv1alpha2.RequestMatch{All: []*spv1alpha2.RequestMatch{{Method: "GET"}, {PathRegex: "/api/[0-9]+"}}},
				ResponseClasses: []*spv1alpha2.ResponseClass{{
					Condition: &spv1alpha2.ResponseMatch{Status: &spv1alpha2.Range{Min: 500}}, IsFailure: true}},
				IsRetryable: true,
				Timeout:     "250ms",
			}},
			RetryBudget:  &spv1alpha2.RetryBudget{RetryRatio: 0.2, MinRetriesPerSecond: 10, TTL: "10s"},
			DstOverrides: []*spv1alpha2.WeightedDst{{Authority: "web-v2.emojivoto.svc.cluster.local:80", Weight: resource.MustParse("100m")}},
		},
		want: `fully_qualified_name: "web.emojivoto.svc.cluster.local" routes: { name: "GET /api/{id}" condition: { all: { method: "GET" } all: { path_regex: "/api/[0-9]+" } } response_classes: { condition: { status: { min: 500 max: 599 } } is_failure: true } is_retryable: true timeout_ms: 250 } retry_budget: { retry_ratio: 0.2 min_retries_per_second: 10 ttl_ms: 10000 } dst_overrides: { authority: "web-v2.emojivoto.svc.cluster.local:80" weight_milli: 100 }`,
	}, {
		name:    "regex that does not compile",
		spec:    spv1alpha2.Spec{Routes: []*spv1alpha2.RouteSpec{{Name: "bad", Condition: &spv1alpha2.RequestMatch{PathRegex: "/api/(["}}}},
		wantErr: "spec.routes[0].condition.pathRegex",
	}, {
		name:    "weights summing to 0",
		spec:    spv1alpha2.Spec{DstOverrides: []*spv1alpha2.WeightedDst{{Authority: "a.b.svc.cluster.local", Weight: resource.MustParse("0")}}},
		wantErr: "weights sum to 0",
	}, {
		name:    "not decodable",
		annot:   map[string]string{store.InvalidAnnotation: "spec.routes: expected a list"},
		wantErr: "expected a list",
	}, {
		name:  "fault injection",
		spec:  spv1alpha2.Spec{Routes: []*spv1alpha2.RouteSpec{{Name: "r", Condition: &spv1alpha2.RequestMatch{Method: "GET"}}}},
		annot: map[string]string{spv1alpha2.FaultsAnnotation: `[{route: r, abort: {percent: 20, httpStatus: 503}, delay: {percent: 10, duration: 50ms}}]`},
		want:  `fully_qualified_name: "web.emojivoto.svc.cluster.local" routes: { name: "r" condition: { method: "GET" } fault: { abort_percent: 20 abort_http_status: 503 delay_percent: 10 delay_ms: 50 } }`,
	}, {
		name:    "fault over 100%",
		spec:    spv1alpha2.Spec{Routes: []*spv1alpha2.RouteSpec{{Name: "r", Condition: &spv1alpha2.RequestMatch{Method: "GET"}}}},
		annot:   map[string]string{spv1alpha2.FaultsAnnotation: `[{route: r, abort: {percent: 120, httpStatus: 503}}]`},
		wantErr: "abort.percent",
	}, {
		name: "empty",
		want: `fully_qualified_name: "web.emojivoto.svc.cluster.local"`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := meta
			m.Annotations = tc.annot
			p, err := ProfileFrom(&spv1alpha2.ServiceProfile{ObjectMeta: m, Spec: tc.spec})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := oneLine(p), strings.Join(strings.Fields(tc.want), ""); got != want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func oneLine(p *destinationv1.Profile) string {
	// prototext's spacing is unstable by design: compare without it.
	return strings.Join(strings.Fields(prototext.MarshalOptions{}.Format(p)), "")
}

const profileSvc = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: emojivoto}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80}]
`

func profileYAML(route, regex string) string {
	return fmt.Sprintf(`apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web.emojivoto.svc.cluster.local, namespace: emojivoto}
spec:
  routes:
  - name: %s
    condition: {method: GET, pathRegex: '%s'}
`, route, regex)
}

// TestGetProfileLocalStore streams a profile from the local directory
// store through changes: an edit, a bad regex (ignored, last good kept),
// a deletion.
func TestGetProfileLocalStore(t *testing.T) {
	dir := t.TempDir()
	// Atomic writes, as local apply's: the store never reads a torn file.
	write := func(name, content string) {
		t.Helper()
		tmp := filepath.Join(dir, ".tmp-"+name)
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("svc.yaml", profileSvc)
	write("sp.yaml", profileYAML("first", "/a"))
	st, err := store.NewLocal(dir, 20*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := startGRPC(t, st, Config{})
	client := dial(t, addr)

	for _, authority := range []string{"web.emojivoto.svc.cluster.local:80", "10.96.0.10:80"} {
		t.Run(authority, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cs, err := client.GetProfile(ctx, &destinationv1.GetRequest{Authority: authority})
			if err != nil {
				t.Fatal(err)
			}
			next := func() string {
				t.Helper()
				p, err := cs.Recv()
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, r := range p.GetRoutes() {
					names = append(names, r.GetName()+"="+r.GetCondition().GetPathRegex())
				}
				return p.GetFullyQualifiedName() + " " + strings.Join(names, ",")
			}
			if got, want := next(), "web.emojivoto.svc.cluster.local first=/a"; got != want {
				t.Fatalf("first profile %q, want %q", got, want)
			}
			write("sp.yaml", profileYAML("second", "/b"))
			if got, want := next(), "web.emojivoto.svc.cluster.local second=/b"; got != want {
				t.Fatalf("after an edit %q, want %q", got, want)
			}
			// A bad regex sends nothing: the next message is the following
			// valid change.
			write("sp.yaml", profileYAML("bad", "/(["))
			time.Sleep(200 * time.Millisecond)
			write("sp.yaml", profileYAML("third", "/c"))
			if got, want := next(), "web.emojivoto.svc.cluster.local third=/c"; got != want {
				t.Fatalf("after a bad then a good profile %q, want %q", got, want)
			}
			if err := os.Remove(filepath.Join(dir, "sp.yaml")); err != nil {
				t.Fatal(err)
			}
			if got, want := next(), " "; got != want {
				t.Fatalf("after deletion %q, want %q", got, want)
			}
			write("sp.yaml", profileYAML("first", "/a"))
			if got, want := next(), "web.emojivoto.svc.cluster.local first=/a"; got != want {
				t.Fatalf("after re-creation %q, want %q", got, want)
			}
		})
	}
}

func TestGetProfileExternal(t *testing.T) {
	st := store.NewMemory()
	addr, _ := startGRPC(t, st, Config{})
	client := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := client.GetProfile(ctx, &destinationv1.GetRequest{Authority: "example.com:80"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := cs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.GetRoutes()) != 0 || p.GetFullyQualifiedName() != "" {
		t.Errorf("external authority got profile %v, want an empty one", p)
	}
}
