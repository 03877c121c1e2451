package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/internal/golden"
	"github.com/linkerd-go/linkerd/pkg/inject"
	"github.com/linkerd-go/linkerd/pkg/version"
)

const (
	injectData   = "testdata/inject/"
	trustAnchors = injectData + "trust-anchors.pem"
)

// manualArgs are the flags of an offline --manual run.
var manualArgs = []string{"inject", "--manual", "--ignore-cluster", "--identity-trust-anchors-file", trustAnchors}

func runInjectCLI(t *testing.T, args []string, stdin string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Execute(context.Background(), args, Env{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(stdin)})
	return code, out.String(), errOut.String()
}

// TestInjectGolden runs inject and uninject and compares stdout, stderr and
// the exit code with testdata/<name>.golden. Regenerate with:
// go test ./cli/cmd -run 'TestInjectGolden' -update
func TestInjectGolden(t *testing.T) {
	saved := version.Version
	version.Version = "test-1.2.3"
	t.Cleanup(func() { version.Version = saved })

	// The uninject cases read the output of a manual injection.
	code, injected, stderr := runInjectCLI(t, append(manualArgs, injectData+"deployment.yaml"), "")
	if code != 0 {
		t.Fatalf("inject --manual failed: %s", stderr)
	}

	tests := []struct {
		name  string
		args  []string
		stdin string
	}{
		{name: "inject_deployment", args: []string{"inject", injectData + "deployment.yaml"}},
		{name: "inject_flags", args: []string{"inject", "--proxy-log-level=debug", "--skip-inbound-ports=3306,8000-8100",
			"--opaque-ports=4000", "--ingress", injectData + "deployment.yaml"}},
		{name: "inject_manual_deployment", args: append(manualArgs, injectData+"deployment.yaml")},
		{name: "inject_manual_flags", args: append(manualArgs, "--proxy-log-level=debug", "--skip-inbound-ports=3306,8000-8100",
			"--proxy-cpu-request=100m", "--proxy-memory-limit=250Mi", "--native-sidecar", "--ingress", "-L", "mesh",
			injectData+"deployment.yaml")},
		{name: "inject_multi", args: []string{"inject", injectData + "multi.yaml"}},
		{name: "inject_manual_multi", args: append(manualArgs, injectData+"multi.yaml")},
		{name: "inject_manual_list", args: append(manualArgs, injectData+"list.yaml")},
		{name: "inject_skipped", args: []string{"inject", injectData + "skipped.yaml"}},
		{name: "inject_dir", args: []string{"inject", injectData + "dir"}},
		{name: "inject_stdin_json", args: []string{"inject", "-"}, stdin: readInjectFile(t, injectData+"deployment.json")},
		{name: "inject_error_bad_yaml", args: []string{"inject", injectData + "bad.yaml"}},
		{name: "inject_error_not_object", args: []string{"inject", injectData + "not-object.yaml"}},
		{name: "inject_error_no_kind", args: []string{"inject", injectData + "no-kind.yaml"}},
		{name: "inject_error_bad_template", args: []string{"inject", injectData + "bad-template.yaml"}},
		{name: "inject_error_missing_file", args: []string{"inject", injectData + "nope.yaml"}},
		{name: "inject_error_no_args", args: []string{"inject"}},
		{name: "inject_error_bad_flag_value", args: []string{"inject", "--proxy-log-level=loud", injectData + "deployment.yaml"}},
		{name: "inject_error_manual_no_anchors", args: []string{"inject", "--manual", "--ignore-cluster", injectData + "deployment.yaml"}},
		{name: "uninject_manual", args: []string{"uninject", "-"}, stdin: injected},
		{name: "uninject_not_injected", args: []string{"uninject", injectData + "multi.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runInjectCLI(t, tt.args, tt.stdin)
			golden.Check(t, tt.name, golden.Result(code, stdout, stderr))
		})
	}
}

// TestUninjectRoundTrip checks that uninject undoes inject --manual.
func TestUninjectRoundTrip(t *testing.T) {
	for _, file := range []string{"deployment.yaml", "multi.yaml", "list.yaml"} {
		for _, extra := range [][]string{nil, {"--native-sidecar"}} {
			args := append(append(append([]string{}, manualArgs...), extra...), injectData+file)
			code, injected, stderr := runInjectCLI(t, args, "")
			if code != 0 {
				t.Fatalf("%s: inject: %s", file, stderr)
			}
			code, restored, stderr := runInjectCLI(t, []string{"uninject", "-"}, injected)
			if code != 0 {
				t.Fatalf("%s: uninject: %s", file, stderr)
			}
			want := decodeInjectStream(t, readInjectFile(t, injectData+file), "")
			// --native-sidecar leaves its configuration annotation behind.
			got := decodeInjectStream(t, restored, inject.ProxyEnableNativeSidecarAnnotation)
			if got != want {
				t.Errorf("%s %v: uninject(inject(x)) != x:\n got %s\nwant %s", file, extra, got, want)
			}
		}
	}
}

// decodeInjectStream decodes a YAML stream into a canonical JSON text,
// without the annotation drop (and the metadata maps it leaves empty).
func decodeInjectStream(t *testing.T, s, drop string) string {
	t.Helper()
	docs, err := splitDocuments([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range docs {
		var v any
		if err := yaml.Unmarshal(d, &v); err != nil {
			t.Fatal(err)
		}
		if v == nil {
			continue
		}
		dropAnnotation(v, drop)
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(j))
	}
	return strings.Join(out, "\n")
}

// dropAnnotation deletes the annotation everywhere in v, and the
// annotations and metadata maps it empties.
func dropAnnotation(v any, name string) {
	switch x := v.(type) {
	case []any:
		for _, item := range x {
			dropAnnotation(item, name)
		}
	case map[string]any:
		for _, item := range x {
			dropAnnotation(item, name)
		}
		meta, _ := x["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		if _, found := ann[name]; !found {
			return
		}
		delete(ann, name)
		if len(ann) == 0 {
			delete(meta, "annotations")
		}
		if len(meta) == 0 {
			delete(x, "metadata")
		}
	}
}

func readInjectFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
