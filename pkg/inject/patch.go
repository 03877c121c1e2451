package inject

import (
	"fmt"
	"strconv"
	"strings"
)

// Operation is one RFC 6902 JSON patch operation. The injector only adds.
type Operation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Patch is a JSON patch (RFC 6902) against a pod, or against a workload's
// pod template, which has the same metadata and spec layout.
type Patch []Operation

func add(path string, value any) Operation {
	return Operation{Op: "add", Path: path, Value: value}
}

// EscapePointerToken escapes a JSON pointer (RFC 6901) reference token:
// "linkerd.io/inject" becomes "linkerd.io~1inject".
func EscapePointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func unescapePointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// Apply applies the patch to doc, a document decoded from JSON or YAML into
// generic maps and slices, and returns the result (doc itself may change).
// It supports the operations the injector produces: add, to an object
// member (replacing it) or an array position ("-" appends).
func (p Patch) Apply(doc map[string]any) (map[string]any, error) {
	var cur any = doc
	for _, op := range p {
		if op.Op != "add" {
			return nil, fmt.Errorf("json patch: unsupported operation %q", op.Op)
		}
		if op.Path == "" || op.Path[0] != '/' {
			return nil, fmt.Errorf("json patch: invalid path %q", op.Path)
		}
		tokens := strings.Split(op.Path[1:], "/")
		for i := range tokens {
			tokens[i] = unescapePointerToken(tokens[i])
		}
		next, err := addAt(cur, tokens, op.Value)
		if err != nil {
			return nil, fmt.Errorf("json patch: add %s: %w", op.Path, err)
		}
		cur = next
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("json patch: the document is no longer an object")
	}
	return m, nil
}

// addAt adds value at the path tokens inside node and returns the new node
// (arrays grow, so their parent must store the returned slice).
func addAt(node any, tokens []string, value any) (any, error) {
	tok := tokens[0]
	last := len(tokens) == 1
	switch n := node.(type) {
	case map[string]any:
		if last {
			n[tok] = value
			return n, nil
		}
		child, ok := n[tok]
		if !ok {
			return nil, fmt.Errorf("no member %q", tok)
		}
		c, err := addAt(child, tokens[1:], value)
		if err != nil {
			return nil, err
		}
		n[tok] = c
		return n, nil
	case []any:
		if last {
			if tok == "-" {
				return append(n, value), nil
			}
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i > len(n) {
				return nil, fmt.Errorf("invalid array index %q", tok)
			}
			n = append(n, nil)
			copy(n[i+1:], n[i:])
			n[i] = value
			return n, nil
		}
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || i >= len(n) {
			return nil, fmt.Errorf("invalid array index %q", tok)
		}
		c, err := addAt(n[i], tokens[1:], value)
		if err != nil {
			return nil, err
		}
		n[i] = c
		return n, nil
	default:
		return nil, fmt.Errorf("cannot add %q to a %T", tok, node)
	}
}
