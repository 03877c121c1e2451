package tap

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestFileResolver(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pods.json")
	pods := []FilePod{
		{Namespace: "demo", Name: "web", Deployment: "web", Addr: "10.0.0.2:4190", Identity: "web.demo", TapEnabled: true},
		{Namespace: "demo", Name: "voting", Deployment: "voting", Addr: "10.0.0.3:4190", Identity: "voting.demo", TapEnabled: true},
		{Namespace: "old", Name: "app", Deployment: "app", Addr: "10.0.0.4:4190", Identity: "app.old"},
	}
	b, err := json.Marshal(pods)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	web := PodTarget{Namespace: "demo", Name: "web", Addr: "10.0.0.2:4190", Identity: "web.demo"}
	voting := PodTarget{Namespace: "demo", Name: "voting", Addr: "10.0.0.3:4190", Identity: "voting.demo"}
	tests := []struct {
		kind, ns, name string
		want           []PodTarget
		code           codes.Code
		msg            string
	}{
		{kind: "deployment", ns: "demo", name: "web", want: []PodTarget{web}},
		{kind: "pod", ns: "demo", name: "voting", want: []PodTarget{voting}},
		{kind: "namespace", name: "demo", want: []PodTarget{voting, web}},
		{kind: "deployment", ns: "demo", name: "nope", code: codes.NotFound, msg: "deployment nope not found in namespace demo"},
		{kind: "statefulset", ns: "demo", name: "web", code: codes.NotFound, msg: "statefulset web not found"},
		{kind: "deployment", ns: "nope", name: "web", code: codes.NotFound, msg: "namespace nope not found"},
		{kind: "service", ns: "demo", name: "web", code: codes.InvalidArgument, msg: "cannot tap service"},
		{kind: "deployment", ns: "old", name: "app", code: codes.FailedPrecondition, msg: "tap not enabled on app"},
	}
	r := &FileResolver{Path: path}
	for _, tt := range tests {
		got, err := r.Resolve(context.Background(), tt.kind, tt.ns, tt.name)
		if tt.msg != "" {
			if status.Code(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("%s/%s in %s: err %v, want %v with %q", tt.kind, tt.name, tt.ns, err, tt.code, tt.msg)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s/%s in %s: %+v, %v; want %+v", tt.kind, tt.name, tt.ns, got, err, tt.want)
		}
	}
	// No file yet: nothing to tap.
	if _, err := (&FileResolver{Path: filepath.Join(dir, "none.json")}).Resolve(context.Background(), "deployment", "demo", "web"); status.Code(err) != codes.NotFound {
		t.Errorf("no pods file: %v, want NotFound", err)
	}
}
