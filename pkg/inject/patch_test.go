package inject

import (
	"encoding/json"
	"testing"
)

func TestPatchApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		doc     string
		patch   Patch
		want    string
		wantErr bool
	}{
		{name: "add member", doc: `{"a":{}}`, patch: Patch{add("/a/b", 1)}, want: `{"a":{"b":1}}`},
		{name: "replace member", doc: `{"a":{"b":0}}`, patch: Patch{add("/a/b", 1)}, want: `{"a":{"b":1}}`},
		{name: "escaped key", doc: `{"m":{}}`, patch: Patch{add("/m/"+EscapePointerToken("linkerd.io/inject"), "enabled")}, want: `{"m":{"linkerd.io/inject":"enabled"}}`},
		{name: "tilde key", doc: `{"m":{}}`, patch: Patch{add("/m/"+EscapePointerToken("a~b/c"), 1)}, want: `{"m":{"a~b/c":1}}`},
		{name: "insert first", doc: `{"l":[1,2]}`, patch: Patch{add("/l/0", 0)}, want: `{"l":[0,1,2]}`},
		{name: "insert in order", doc: `{"l":[9]}`, patch: Patch{add("/l/0", 0), add("/l/1", 1)}, want: `{"l":[0,1,9]}`},
		{name: "append", doc: `{"l":[1]}`, patch: Patch{add("/l/-", 2), add("/l/-", 3)}, want: `{"l":[1,2,3]}`},
		{name: "insert at end", doc: `{"l":[1]}`, patch: Patch{add("/l/1", 2)}, want: `{"l":[1,2]}`},
		{name: "nested in array", doc: `{"l":[{"x":1}]}`, patch: Patch{add("/l/0/y", 2)}, want: `{"l":[{"x":1,"y":2}]}`},
		{name: "missing parent", doc: `{}`, patch: Patch{add("/a/b", 1)}, wantErr: true},
		{name: "index out of range", doc: `{"l":[]}`, patch: Patch{add("/l/2", 1)}, wantErr: true},
		{name: "bad index", doc: `{"l":[]}`, patch: Patch{add("/l/x", 1)}, wantErr: true},
		{name: "into a scalar", doc: `{"a":1}`, patch: Patch{add("/a/b", 1)}, wantErr: true},
		{name: "unsupported op", doc: `{}`, patch: Patch{{Op: "remove", Path: "/a"}}, wantErr: true},
		{name: "relative path", doc: `{}`, patch: Patch{add("a", 1)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal([]byte(tt.doc), &doc); err != nil {
				t.Fatal(err)
			}
			got, err := tt.patch.Apply(doc)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Apply = %s, want an error", mustJSON(t, got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := mustJSON(t, got); s != tt.want {
				t.Errorf("Apply = %s, want %s", s, tt.want)
			}
		})
	}
}

func TestPatchJSON(t *testing.T) {
	t.Parallel()
	p := Patch{add("/metadata/labels/a~1b", "c"), {Op: "remove", Path: "/x"}}
	want := `[{"op":"add","path":"/metadata/labels/a~1b","value":"c"},{"op":"remove","path":"/x"}]`
	if got := mustJSON(t, p); got != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
}
