package chartvalues

import (
	"reflect"
	"testing"
)

func TestGetSet(t *testing.T) {
	vals := map[string]any{"proxy": map[string]any{"image": map[string]any{"name": "p"}, "debug": true}, "leaf": "x"}
	for _, tt := range []struct {
		path string
		want any
		ok   bool
	}{
		{"proxy.image.name", "p", true},
		{"proxy.debug", true, true},
		{"proxy.image.tag", nil, false},
		{"leaf.below", nil, false},
		{"missing", nil, false},
	} {
		got, ok := Get(vals, tt.path)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Get(%q) = %v, %v; want %v, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
	if String(vals, "proxy.image.name") != "p" || String(vals, "proxy.debug") != "" {
		t.Error("String: wrong value or type")
	}
	if !Bool(vals, "proxy.debug") || Bool(vals, "leaf") {
		t.Error("Bool: wrong value or type")
	}

	Set(vals, "leaf.below.deep", 1) // replaces the string "x" with maps
	Set(vals, "proxy.image.name", "q")
	if v, _ := Get(vals, "leaf.below.deep"); v != 1 {
		t.Errorf("after Set: leaf.below.deep = %v", v)
	}
	if String(vals, "proxy.image.name") != "q" || !Bool(vals, "proxy.debug") {
		t.Errorf("Set changed or lost siblings: %v", vals)
	}
}

func TestMerge(t *testing.T) {
	base := map[string]any{"a": map[string]any{"x": 1, "y": 2}, "b": "keep", "c": []any{1}}
	override := map[string]any{"a": map[string]any{"y": 3, "z": map[string]any{"n": 4}}, "c": "scalar"}
	got := Merge(base, override)
	want := map[string]any{"a": map[string]any{"x": 1, "y": 3, "z": map[string]any{"n": 4}}, "b": "keep", "c": "scalar"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Merge = %v, want %v", got, want)
	}
	if base["a"].(map[string]any)["y"] != 2 || len(override) != 2 {
		t.Error("Merge modified its arguments")
	}
	// The result does not share override's maps.
	got["a"].(map[string]any)["z"].(map[string]any)["n"] = 5
	if override["a"].(map[string]any)["z"].(map[string]any)["n"] != 4 {
		t.Error("the result shares a map with override")
	}
}
