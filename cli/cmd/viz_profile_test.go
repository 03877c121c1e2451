package cmd

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/pkg/profiles"
	tapv1 "github.com/linkerd-go/linkerd/proto/tap/v1"
	"github.com/linkerd-go/linkerd/viz/tap"
)

// TestObserveRoutes derives a profile's routes from tap events: the
// tapped pods' inbound requests only, by method and path, most requested
// first when limited.
func TestObserveRoutes(t *testing.T) {
	events := make(chan tap.Event, 32)
	var id uint64
	req := func(dir, method, path string) {
		id++
		events <- tap.Event{Namespace: "demo", Pod: "web", TapEvent: &tapv1.TapEvent{Direction: dir,
			Event: &tapv1.TapEvent_RequestInit{RequestInit: &tapv1.RequestInit{Id: id, Method: method, Path: path, Authority: "web.demo:8080"}}}}
		// Its response and end do not add routes.
		events <- tap.Event{Namespace: "demo", Pod: "web", TapEvent: &tapv1.TapEvent{Direction: dir,
			Event: &tapv1.TapEvent_ResponseInit{ResponseInit: &tapv1.ResponseInit{Id: id, HttpStatus: 200}}}}
		events <- tap.Event{Namespace: "demo", Pod: "web", TapEvent: &tapv1.TapEvent{Direction: dir,
			Event: &tapv1.TapEvent_ResponseEnd{ResponseEnd: &tapv1.ResponseEnd{Id: id, GrpcStatus: -1}}}}
	}
	req("inbound", "GET", "/api/list")
	req("inbound", "GET", "/api/list")
	req("inbound", "GET", "/api/vote?choice=:doughnut:")
	req("inbound", "GET", "/api/vote?choice=:bagel:")
	req("inbound", "GET", "/")
	req("outbound", "POST", "/linkerdgo.demo.v1.Voting/VoteDoughnut") // web's own call: not its route
	close(events)
	seen := observeRoutes(events)
	for _, tc := range []struct {
		limit int
		want  string
	}{
		{20, "GET /|GET /api/list|GET /api/vote"},
		{1, "GET /api/list"}, // ties (2 each): by path
	} {
		p, err := seen.Profile(profiles.Service{Name: "web", Namespace: "demo"}, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range p.Spec.Routes {
			names = append(names, r.Name)
		}
		if got := strings.Join(names, "|"); got != tc.want {
			t.Errorf("limit %d: routes %s, want %s", tc.limit, got, tc.want)
		}
	}
}

// TestVizProfileErrors: bad input is one line on stderr and exit 1.
func TestVizProfileErrors(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	state := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"viz", "profile", "web"}, "give the resource to tap: --tap deploy/NAME"},
		{[]string{"viz", "profile", "web", "--tap", "svc/web"}, "cannot build a profile from service"},
		{[]string{"viz", "profile", "web", "--tap", "deploy/web", "--tap-duration", "0s"}, "--tap-duration must be positive"},
		{[]string{"viz", "profile", "web", "--tap", "deploy/web", "--tap-route-limit", "0"}, "--tap-route-limit must be positive"},
		{[]string{"viz", "profile", "Web", "--tap", "deploy/web"}, `invalid service name "Web"`},
		{[]string{"viz", "profile", "web", "--tap", "deploy/web", "-o", "wide"}, "--output must be one of yaml, json"},
		{[]string{"viz", "profile", "web", "--tap", "deploy/web", "--state-dir", state}, "no local mesh up at " + state},
	} {
		var stdout, stderr bytes.Buffer
		code := Execute(context.Background(), tc.args, Env{Stdout: &stdout, Stderr: &stderr})
		if code != 1 || stdout.Len() != 0 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", tc.args, code, stdout.String(), stderr.String(), tc.want)
		}
	}
}
