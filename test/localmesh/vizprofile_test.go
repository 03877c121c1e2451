package localmesh_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	sp "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
)

// vizProfileTap runs `linkerd viz profile --tap` against the running
// demo: a valid ServiceProfile for the voting service whose routes are its
// gRPC methods (the bot's votes call Vote), and one for web whose routes
// are the bot's requests (GET /api/vote?choice=...), query strings left out.
func vizProfileTap(t *testing.T, linkerd, stateDir string) {
	t.Helper()
	profile := func(svc string, args ...string) map[string]string {
		t.Helper()
		out, err := exec.Command(linkerd, append([]string{"viz", "profile", svc, "-n", "demo", "--tap", "deploy/" + svc,
			"--tap-duration", "6s", "--state-dir", stateDir}, args...)...).Output()
		if err != nil {
			t.Fatalf("viz profile %s --tap: %v\n%s", svc, err, out)
		}
		raw, err := yaml.YAMLToJSON(out)
		if err != nil {
			t.Fatalf("viz profile --tap: not YAML: %v\n%s", err, out)
		}
		p, err := sp.Decode(raw)
		if err == nil {
			err = sp.Validate(p)
		}
		if err != nil {
			t.Fatalf("viz profile --tap: not a valid ServiceProfile: %v\n%s", err, out)
		}
		if want := svc + ".demo.svc.cluster.local"; p.Name != want || p.Namespace != "demo" {
			t.Errorf("profile %s/%s, want demo/%s", p.Namespace, p.Name, want)
		}
		routes := map[string]string{}
		for _, r := range p.Spec.Routes {
			routes[r.Name] = r.Condition.Method + " " + r.Condition.PathRegex
		}
		t.Logf("viz profile %s --tap:\n%s", svc, out)
		return routes
	}
	routes := profile("voting")
	if got := routes["POST /linkerdgo.demo.v1.Voting/Vote"]; got != `POST /linkerdgo\.demo\.v1\.Voting/Vote` {
		t.Errorf("voting's Vote route: condition %q (routes %v)", got, routes)
	}
	for name := range routes {
		if !strings.HasPrefix(name, "POST /linkerdgo.demo.v1.Voting/") {
			t.Errorf("voting route %q is not a voting method", name)
		}
	}
	routes = profile("web", "-o", "json")
	if got := routes["GET /api/vote"]; got != "GET /api/vote" {
		t.Errorf("web's GET /api/vote route: condition %q (routes %v)", got, routes)
	}
	for name := range routes {
		if strings.ContainsAny(name, "?=") {
			t.Errorf("web route %q keeps a query string", name)
		}
	}
}

// vizList runs `linkerd viz list`: every demo pod has tap enabled.
func vizList(t *testing.T, linkerd, stateDir string) {
	t.Helper()
	out, err := exec.Command(linkerd, "viz", "list", "-n", "demo", "--state-dir", stateDir).CombinedOutput()
	if err != nil {
		t.Fatalf("viz list: %v\n%s", err, out)
	}
	want := "Pods with tap enabled:\n\t* demo/bot\n\t* demo/items\n\t* demo/voting\n\t* demo/web\n"
	if string(out) != want {
		t.Errorf("viz list -n demo:\n%s\nwant:\n%s", out, want)
	}
	out, err = exec.Command(linkerd, "viz", "list", "-n", "nothere", "--state-dir", stateDir).CombinedOutput()
	if msg := strings.TrimSpace(string(out)); err == nil || msg != "Error: no meshed pods in namespace nothere" {
		t.Errorf("viz list -n nothere: %v, %q", err, msg)
	}
}

// identity runs `linkerd identity` against the demo's pods: each proxy's
// certificate, fetched from its inbound port, names the pod's identity.
func identity(t *testing.T, linkerd, stateDir string) {
	t.Helper()
	out, err := exec.Command(linkerd, "identity", "-n", "demo", "web", "--state-dir", stateDir).CombinedOutput()
	if err != nil {
		t.Fatalf("identity web: %v\n%s", err, out)
	}
	for _, want := range []string{"\nPOD web (1 of 1)\n", "X509v3 Subject Alternative Name:\n                DNS:web.demo.serviceaccount.identity.linkerd.cluster.local\n",
		"Issuer: CN=identity.linkerd.cluster.local", "Public Key Algorithm: ECDSA (P-256, 256 bit)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("identity web lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(linkerd, "identity", "-n", "demo", "-l", "app=voting", "--state-dir", stateDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "POD voting (1 of 1)") || !strings.Contains(string(out), "DNS:voting.demo.serviceaccount.identity.linkerd.cluster.local") {
		t.Errorf("identity -l app=voting: %v\n%s", err, out)
	}
	out, err = exec.Command(linkerd, "identity", "-n", "demo", "nothere", "--state-dir", stateDir).CombinedOutput()
	if msg := strings.TrimSpace(string(out)); err == nil || !strings.HasPrefix(msg, "Error: pod nothere not found in namespace demo") || strings.Contains(msg, "\n") {
		t.Errorf("identity of a missing pod: %v, %q", err, msg)
	}
}

// profileFromProto generates the voting service's profile from the demo's
// protobuf file with `linkerd profile --proto`, applies it to the running
// demo (linkerd local apply -f -), and waits for its Vote route in the
// caller's per-route metrics.
func profileFromProto(t *testing.T, linkerd, stateDir string) {
	t.Helper()
	gen, err := exec.Command(linkerd, "profile", "-n", "demo", "--proto", filepath.Join("..", "..", "proto", "demo", "v1", "demo.proto"), "voting").Output()
	if err != nil {
		t.Fatalf("profile --proto: %v\n%s", err, gen)
	}
	if !strings.Contains(string(gen), "name: Vote\n") || !strings.Contains(string(gen), `pathRegex: /linkerdgo\.demo\.v1\.Voting/Vote`) {
		t.Errorf("profile --proto of the demo lacks the Vote route:\n%s", gen)
	}
	apply := exec.Command(linkerd, "local", "apply", "-f", "-", "--state-dir", stateDir)
	apply.Stdin = bytes.NewReader(gen)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("local apply -f - of the generated profile: %v\n%s", err, out)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := exec.Command(linkerd, "viz", "routes", "deploy/web", "-n", "demo", "--to", "deploy/voting", "--state-dir", stateDir).Output()
		if err == nil {
			if r := tableRows(string(out))["Vote"]; len(r) >= 2 && r[0] == "voting" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("viz routes deploy/web --to deploy/voting never showed the generated profile's Vote route:\n%s", out)
		}
		time.Sleep(3 * time.Second)
	}
}
