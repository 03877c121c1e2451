package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/linkerd-go/linkerd"

// listed is what `go list -json` says about one package.
type listed struct {
	ImportPath string
	Imports    []string // direct, non-test
	Deps       []string // transitive, non-test
}

// rule forbids packages under from (relative to the module) to depend on
// packages under any of deny, except those in allow ("from -> to").
type rule struct {
	name       string
	from       []string
	deny       []string
	transitive bool
	allow      map[string]bool
}

var rules = []rule{
	{
		name:       "pkg/ holds libraries",
		from:       []string{"pkg"},
		deny:       []string{"controller", "proxy", "cli", "await", "proxyinit", "demo", "test", "hack", "bench"},
		transitive: true,
	},
	{
		name: "cli/ takes shared names from pkg/, not from controller/",
		from: []string{"cli"},
		deny: []string{"controller"},
		allow: map[string]bool{
			"cli/localmesh -> controller/store":               true,
			"cli/localmesh -> controller/policy":              true, // validates applied policy resources as the controller reads them
			"cli/localmesh -> controller/identity/localtoken": true,
		},
	},
	{
		name:       "only tests import test/",
		from:       []string{"pkg", "cli", "controller", "proxy", "await", "proxyinit", "demo", "hack", "internal", "cmd"},
		deny:       []string{"test"},
		transitive: true,
	},
}

// under reports whether path (relative to the module) is dir or below it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

func listModule(t *testing.T) []listed {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("no go command: %v", err)
	}
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,Deps", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; want the whole module", len(pkgs))
	}
	return pkgs
}

// violations applies the rules to pkgs and returns one line per broken one.
func violations(pkgs []listed) []string {
	var out []string
	for _, p := range pkgs {
		from, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue
		}
		for _, r := range rules {
			if !underAny(from, r.from) {
				continue
			}
			deps := p.Imports
			if r.transitive {
				deps = p.Deps
			}
			for _, d := range deps {
				to, ok := strings.CutPrefix(d, module+"/")
				if !ok || !underAny(to, r.deny) || r.allow[from+" -> "+to] {
					continue
				}
				out = append(out, r.name+": "+from+" -> "+to)
			}
		}
	}
	return out
}

func underAny(path string, dirs []string) bool {
	for _, d := range dirs {
		if under(path, d) {
			return true
		}
	}
	return false
}

func TestLayering(t *testing.T) {
	for _, v := range violations(listModule(t)) {
		t.Error(v)
	}
}

// TestRulesCatch checks that the rules do catch what they forbid.
func TestRulesCatch(t *testing.T) {
	tests := []struct {
		pkg  listed
		want int
	}{
		{listed{ImportPath: module + "/pkg/k8s", Deps: []string{module + "/proxy/config"}}, 1},
		{listed{ImportPath: module + "/pkg/k8s", Deps: []string{module + "/proxyinit"}}, 1},
		{listed{ImportPath: module + "/pkg/k8s", Deps: []string{module + "/pkg/proxyenv", "fmt"}}, 0},
		{listed{ImportPath: module + "/cli/cmd", Imports: []string{module + "/controller/identity"}}, 1},
		{listed{ImportPath: module + "/cli/localmesh", Imports: []string{module + "/controller/store"}}, 0},
		{listed{ImportPath: module + "/hack/images", Deps: []string{module + "/test/cluster"}}, 1},
		{listed{ImportPath: module + "/test/localmesh", Deps: []string{module + "/test/cluster"}}, 0},
	}
	for _, tt := range tests {
		if got := violations([]listed{tt.pkg}); len(got) != tt.want {
			t.Errorf("%s %v%v: got %d violations %q, want %d", tt.pkg.ImportPath, tt.pkg.Imports, tt.pkg.Deps, len(got), got, tt.want)
		}
	}
}
