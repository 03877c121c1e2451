package vizcheck

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/linkerd-go/linkerd/cli/healthcheck"
	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

func TestParseQueryResponse(t *testing.T) {
	tests := []struct {
		name, body string
		want       []Sample
		wantErr    string
	}{
		{
			name: "vector",
			body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"namespace":"demo","pod":"web-1"},"value":[1700000000.5,"1"]},{"metric":{"pod":"bot-1"},"value":[1700000000.5,"0"]}]}}`,
			want: []Sample{{Metric: map[string]string{"namespace": "demo", "pod": "web-1"}, Value: "1"}, {Metric: map[string]string{"pod": "bot-1"}, Value: "0"}},
		},
		{name: "empty", body: `{"status":"success","data":{"resultType":"vector","result":[]}}`, want: []Sample{}},
		{name: "error", body: `{"status":"error","errorType":"bad_data","error":"parse error at char 3"}`, wantErr: "parse error at char 3"},
		{name: "matrix", body: `{"status":"success","data":{"resultType":"matrix","result":[]}}`, wantErr: "want a vector"},
		{name: "not json", body: `<html>502</html>`, wantErr: "something else"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseQueryResponse([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d samples, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i].Value != tt.want[i].Value || len(got[i].Metric) != len(tt.want[i].Metric) {
					t.Errorf("sample %d = %+v, want %+v", i, got[i], tt.want[i])
				}
				for k, v := range tt.want[i].Metric {
					if got[i].Metric[k] != v {
						t.Errorf("sample %d label %s = %q, want %q", i, k, got[i].Metric[k], v)
					}
				}
			}
		})
	}
}

func TestFindNamespace(t *testing.T) {
	labelled := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "observability", Labels: map[string]string{ExtensionLabel: ExtensionName}}}
	plain := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DefaultNamespace}}
	other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "second", Labels: map[string]string{ExtensionLabel: ExtensionName}}}
	tests := []struct {
		name     string
		objs     []*corev1.Namespace
		want     string
		got      string
		notFound bool
		wantErr  string
	}{
		{name: "by label", objs: []*corev1.Namespace{labelled, plain}, got: "observability"},
		{name: "by name", objs: []*corev1.Namespace{plain}, got: DefaultNamespace},
		{name: "given", objs: []*corev1.Namespace{labelled, plain}, want: DefaultNamespace, got: DefaultNamespace},
		{name: "given missing", objs: []*corev1.Namespace{labelled}, want: "nope", notFound: true},
		{name: "absent", notFound: true},
		{name: "two labelled", objs: []*corev1.Namespace{labelled, other}, wantErr: "--viz-namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset()
			for _, ns := range tt.objs {
				if _, err := cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := FindNamespace(context.Background(), cs, tt.want)
			switch {
			case tt.notFound:
				if !apierrors.IsNotFound(err) {
					t.Fatalf("got %q, %v; want a not-found error", got, err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
			case err != nil || got != tt.got:
				t.Fatalf("got %q, %v; want %q", got, err, tt.got)
			}
		})
	}
}

func TestSelfCheckResult(t *testing.T) {
	ok := &vizv1.CheckResult{Description: "can query Prometheus", Status: vizv1.CheckResult_OK}
	warn := &vizv1.CheckResult{Description: "Prometheus scrapes proxies", Status: vizv1.CheckResult_WARNING, Message: "no target"}
	bad := &vizv1.CheckResult{Description: "can list pods", Status: vizv1.CheckResult_FAILED, Message: "forbidden"}
	tests := []struct {
		name     string
		results  []*vizv1.CheckResult
		wantErr  string // "" for nil
		wantNote bool
	}{
		{"all ok", []*vizv1.CheckResult{ok}, "", false},
		{"warning is a note", []*vizv1.CheckResult{ok, warn}, "Prometheus scrapes proxies: no target", true},
		{"failure wins", []*vizv1.CheckResult{warn, bad}, "can list pods: forbidden", false},
		{"unspecified status fails", []*vizv1.CheckResult{{Description: "x"}}, "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SelfCheckResult(&vizv1.SelfCheckResponse{Results: tt.results})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want %q", err, tt.wantErr)
			}
			var note *healthcheck.NoteError
			if isNote := errors.As(err, &note); isNote != tt.wantNote {
				t.Fatalf("note = %v, want %v (%v)", isNote, tt.wantNote, err)
			}
		})
	}
}
