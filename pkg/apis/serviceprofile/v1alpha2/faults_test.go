package v1alpha2

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFaults(t *testing.T) {
	routes := []*RouteSpec{{Name: "GET /a", Condition: &RequestMatch{Method: "GET"}}, {Name: "POST /b", Condition: &RequestMatch{Method: "POST"}}}
	tests := []struct {
		name, annotation string
		wantErr          string // a substring; "" for valid
		wantRoutes       int
	}{
		{name: "none", wantRoutes: 0},
		{name: "abort and delay", annotation: `[{route: "GET /a", abort: {percent: 20, httpStatus: 503}, delay: {percent: 10, duration: 100ms}}, {route: "POST /b", delay: {percent: 100, duration: 1s}}]`, wantRoutes: 2},
		{name: "JSON", annotation: `[{"route": "GET /a", "abort": {"percent": 0.5, "httpStatus": 500}}]`, wantRoutes: 1},
		{name: "percent over 100", annotation: `[{route: "GET /a", abort: {percent: 120, httpStatus: 503}}]`, wantErr: "metadata.annotations[faults.linkerd-go.io/v1][0].abort.percent: must be between 0 and 100"},
		{name: "bad status", annotation: `[{route: "GET /a", abort: {percent: 1, httpStatus: 99}}]`, wantErr: "[0].abort.httpStatus: 99 is not an HTTP status code"},
		{name: "bad duration", annotation: `[{route: "GET /a", delay: {percent: 1, duration: soon}}]`, wantErr: "[0].delay.duration"},
		{name: "unknown route", annotation: `[{route: "GET /c", delay: {percent: 1, duration: 1s}}]`, wantErr: `[0].route: "GET /c" is not a route of the profile`},
		{name: "nothing to inject", annotation: `[{route: "GET /a"}]`, wantErr: "[0]: set abort, delay or both"},
		{name: "unknown field", annotation: `[{route: "GET /a", abrot: {percent: 1}}]`, wantErr: "unknown field"},
		{name: "not a list", annotation: `abort: 20`, wantErr: "not a list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := &ServiceProfile{ObjectMeta: metav1.ObjectMeta{Name: "web.ns.svc.cluster.local"}, Spec: Spec{Routes: routes}}
			if tc.annotation != "" {
				sp.Annotations = map[string]string{FaultsAnnotation: tc.annotation}
			}
			faults, err := Faults(sp)
			verr := Validate(sp)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Faults: err = %v, want one containing %q", err, tc.wantErr)
				}
				if verr == nil || !strings.Contains(verr.Error(), tc.wantErr) {
					t.Fatalf("Validate: err = %v, want one containing %q", verr, tc.wantErr)
				}
				return
			}
			if err != nil || verr != nil {
				t.Fatalf("Faults: %v, Validate: %v", err, verr)
			}
			if len(faults) != tc.wantRoutes {
				t.Errorf("faults for %d routes, want %d", len(faults), tc.wantRoutes)
			}
		})
	}
}
