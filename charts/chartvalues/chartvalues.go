// Package chartvalues reads, sets and merges chart values: nested maps, as
// Helm and YAML decoding give them, in which a dotted path
// ("proxy.image.name") names a value.
package chartvalues

import "strings"

// Get returns the value at a dotted path of vals, and whether it is there.
func Get(vals map[string]any, path string) (any, bool) {
	var cur any = vals
	for k := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// String returns the string at a dotted path of vals, "" when absent
// or not a string.
func String(vals map[string]any, path string) string {
	v, _ := Get(vals, path)
	s, _ := v.(string)
	return s
}

// Bool returns the boolean at a dotted path of vals, false when
// absent or not a boolean.
func Bool(vals map[string]any, path string) bool {
	v, _ := Get(vals, path)
	b, _ := v.(bool)
	return b
}

// Set sets a dotted path of vals to v, creating maps on the way and
// replacing non-map values in between.
func Set(vals map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	m := vals
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

// Merge returns base with override merged in, as the helm CLI
// merges -f files: maps are merged recursively, anything else in override
// replaces base's value. Neither argument is modified.
func Merge(base, override map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(override))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		if om, ok := v.(map[string]any); ok {
			if bm, ok := out[k].(map[string]any); ok {
				out[k] = Merge(bm, om)
				continue
			}
			out[k] = Merge(nil, om)
			continue
		}
		out[k] = v
	}
	return out
}
