package profiles

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/internal/golden"
	sp "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
)

var web = Service{Name: "web", Namespace: "demo"}

// render renders p as YAML and checks it decodes back to a valid profile.
func render(t *testing.T, p *sp.ServiceProfile) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, p, "yaml"); err != nil {
		t.Fatal(err)
	}
	decodeValid(t, b.String())
	return b.String()
}

// decodeValid decodes YAML strictly as a ServiceProfile and validates it.
func decodeValid(t *testing.T, doc string) *sp.ServiceProfile {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("not YAML: %v\n%s", err, doc)
	}
	p, err := sp.Decode(raw)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if err := sp.Validate(p); err != nil {
		t.Fatalf("validate: %v", err)
	}
	return p
}

func TestTemplate(t *testing.T) {
	for _, svc := range []Service{web, {Name: "books", Namespace: "shop", ClusterDomain: "example.org"}} {
		got := Template(svc)
		p := decodeValid(t, got)
		if p.Name != svc.FQDN() || p.Namespace != svc.Namespace || len(p.Spec.Routes) != 1 {
			t.Errorf("template of %+v: name %q, namespace %q, %d routes", svc, p.Name, p.Namespace, len(p.Spec.Routes))
		}
		if svc == web {
			golden.Check(t, "template", got)
		}
	}
}

func TestFromOpenAPI(t *testing.T) {
	for _, tc := range []struct{ file, golden string }{
		{"books.swagger.yaml", "openapi_swagger2"},
		{"voting.openapi3.json", "openapi_v3"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			spec, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			p, err := FromOpenAPI(web, spec)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tc.golden, render(t, p))
		})
	}
}

func TestFromOpenAPIErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"bad.yaml", "not a JSON or YAML OpenAPI spec"},
		{"no_version.json", `no "openapi" or "swagger" version field`},
		{"old_swagger.yaml", `unsupported Swagger version "1.2"`},
		{"relative_path.yaml", `paths: "a/b" does not start with /`},
		{"no_paths.yaml", "no paths"},
		{"bad_timeout.yaml", "spec.routes[0].timeout"},
		{"voting.proto", "not an OpenAPI spec: the document is not an object"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			spec, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = FromOpenAPI(web, spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestFromProto(t *testing.T) {
	for _, tc := range []struct{ file, golden string }{
		{"voting.proto", "proto_voting"},
		{"nopackage.proto", "proto_nopackage"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			p, err := FromProto(Service{Name: "voting", Namespace: "demo"}, tc.file, src)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tc.golden, render(t, p))
		})
	}
}

func TestFromProtoErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"bad_syntax.proto", "bad_syntax.proto:4:"},
		{"messages_only.proto", "no service methods"},
		{"books.swagger.yaml", "books.swagger.yaml:1:"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = FromProto(web, tc.file, src)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestPathRegex(t *testing.T) {
	for _, tc := range []struct {
		path, want string
		match      []string
		noMatch    []string
	}{
		{"/books", `/books`, []string{"/books"}, []string{"/books/1", "/bookss"}},
		{"/books/{id}", `/books/[^/]*`, []string{"/books/1", "/books/"}, []string{"/books/1/x"}},
		{"/a.json/{x}-{y}", `/a\.json/[^/]*-[^/]*`, []string{"/a.json/1-2"}, []string{"/aXjson/1-2", "/a.json/1/-2"}},
		{"/v1/{name}:run", `/v1/[^/]*:run`, []string{"/v1/job:run"}, []string{"/v1/job"}},
	} {
		got := PathRegex(tc.path)
		if got != tc.want {
			t.Errorf("PathRegex(%q) = %q, want %q", tc.path, got, tc.want)
		}
		re := regexp.MustCompile("^(?:" + got + ")$")
		for _, m := range tc.match {
			if !re.MatchString(m) {
				t.Errorf("%s does not match %s", got, m)
			}
		}
		for _, m := range tc.noMatch {
			if re.MatchString(m) {
				t.Errorf("%s matches %s", got, m)
			}
		}
	}
}

func TestObserved(t *testing.T) {
	var o Observed
	for i := 0; i < 5; i++ {
		o.Add(Request{"GET", "/api/list"})
	}
	for i := 0; i < 3; i++ {
		o.Add(Request{"POST", "/linkerdgo.demo.v1.Voting/VoteDoughnut"})
	}
	o.Add(Request{"GET", "/api/vote?choice=:doughnut:"})
	o.Add(Request{"GET", "/api/vote?choice=:bagel:"})
	o.Add(Request{"POST", "/api/vote"})
	o.Add(Request{"CONNECT", "example.com:443"}) // not a path: ignored
	o.Add(Request{"", "/nomethod"})
	if o.Len() != 4 {
		t.Fatalf("%d routes seen, want 4", o.Len())
	}
	names := func(limit int) []string {
		p, err := o.Profile(web, limit)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, r := range p.Spec.Routes {
			n = append(n, r.Name)
		}
		return n
	}
	for _, tc := range []struct {
		limit int
		want  string
	}{
		{0, "GET /api/list|GET /api/vote|POST /api/vote|POST /linkerdgo.demo.v1.Voting/VoteDoughnut"},
		{2, "GET /api/list|POST /linkerdgo.demo.v1.Voting/VoteDoughnut"},
		{3, "GET /api/list|GET /api/vote|POST /linkerdgo.demo.v1.Voting/VoteDoughnut"}, // ties: by name
	} {
		if got := strings.Join(names(tc.limit), "|"); got != tc.want {
			t.Errorf("limit %d: routes %s, want %s", tc.limit, got, tc.want)
		}
	}
	p, err := o.Profile(web, 0)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "observed", render(t, p))

	var empty Observed
	if _, err := empty.Profile(web, 0); err == nil || !strings.Contains(err.Error(), "no requests seen") {
		t.Errorf("empty: error %v", err)
	}
}

func TestRenderJSON(t *testing.T) {
	p, err := FromProto(web, "nopackage.proto", []byte(`syntax = "proto3"; message P {} service H { rpc C(P) returns (P); }`))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Render(&b, p, "json"); err != nil {
		t.Fatal(err)
	}
	want := `"pathRegex": "/H/C"`
	if !strings.Contains(b.String(), want) || strings.Contains(b.String(), "creationTimestamp") {
		t.Errorf("json:\n%s\nwant %s, no creationTimestamp", b.String(), want)
	}
	if err := Render(&b, p, "table"); err == nil {
		t.Error("output table accepted")
	}
}
