package cmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/pkg/inject"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// podTemplatePaths maps the lower-case kinds of workloads to the path of
// their pod template; a Pod is its own template (empty path).
var podTemplatePaths = map[string][]string{
	"pod":                   {},
	"deployment":            {"spec", "template"},
	"replicaset":            {"spec", "template"},
	"replicationcontroller": {"spec", "template"},
	"statefulset":           {"spec", "template"},
	"daemonset":             {"spec", "template"},
	"job":                   {"spec", "template"},
	"cronjob":               {"spec", "jobTemplate", "spec", "template"},
}

// manifestTransformer changes the pod templates of workloads: inject or
// uninject.
type manifestTransformer interface {
	// transform changes tmpl, a copy of w's pod template in generic form
	// ({"metadata": ..., "spec": ...}).
	transform(w *inject.Workload, tmpl map[string]any) (manifestOutcome, error)
	// verb says what a change is, for the summary ("injected").
	verb() string
	// summarizeSkips asks for the warnings section in the summary.
	summarizeSkips() bool
}

// manifestOutcome is what happened to one workload.
type manifestOutcome struct {
	changed  bool
	skip     *inject.Skip
	warnings []string
}

// resourceReport is one line of the summary.
type resourceReport struct {
	kind, name string
	manifestOutcome
}

// manifestSource is one input: a file or standard input.
type manifestSource struct {
	name string
	data []byte
}

// transformManifests runs t over every resource of the inputs (files,
// directories, "-"), writes the resulting stream to stdout and a summary
// per input to stderr. Nothing is written when an input is invalid.
func transformManifests(args []string, stdin io.Reader, stdout, stderr io.Writer, t manifestTransformer) error {
	sources, err := readManifestSources(args, stdin)
	if err != nil {
		return err
	}
	var out, summary bytes.Buffer
	for _, src := range sources {
		reports, err := transformSource(src, t, &out)
		if err != nil {
			return err
		}
		writeSummary(&summary, reports, t)
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		return err
	}
	_, err = stderr.Write(summary.Bytes())
	return err
}

// readManifestSources reads the inputs: "-" is standard input (once), a
// directory contributes its *.yaml, *.yml and *.json files, recursively.
func readManifestSources(args []string, stdin io.Reader) ([]manifestSource, error) {
	var sources []manifestSource
	stdinRead := false
	for _, arg := range args {
		if arg == "-" {
			if stdinRead {
				return nil, errors.New(`"-" (standard input) given more than once`)
			}
			stdinRead = true
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("reading standard input: %w", err)
			}
			sources = append(sources, manifestSource{name: "<stdin>", data: data})
			continue
		}
		fi, err := os.Stat(arg)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			data, err := os.ReadFile(arg)
			if err != nil {
				return nil, err
			}
			sources = append(sources, manifestSource{name: arg, data: data})
			continue
		}
		err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			switch strings.ToLower(filepath.Ext(p)) {
			case ".yaml", ".yml", ".json":
			default:
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sources = append(sources, manifestSource{name: p, data: data})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return sources, nil
}

// transformSource transforms the documents of one input and appends them
// to out, each followed by "---".
func transformSource(src manifestSource, t manifestTransformer, out *bytes.Buffer) ([]resourceReport, error) {
	docs, err := splitDocuments(src.data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.name, err)
	}
	var reports []resourceReport
	for i, raw := range docs {
		where := fmt.Sprintf("%s: document %d", src.name, i+1)
		var obj any
		useNumber := func(d *json.Decoder) *json.Decoder { d.UseNumber(); return d }
		if err := yaml.Unmarshal(raw, &obj, useNumber); err != nil {
			return nil, fmt.Errorf("%s: invalid YAML: %s", where, oneLine(err.Error()))
		}
		if obj == nil {
			continue // empty or comments only
		}
		m, ok := obj.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: not a Kubernetes resource (a %s, not an object)", where, yamlKind(obj))
		}
		changed, err := transformObject(m, t, where, &reports)
		if err != nil {
			return nil, err
		}
		if changed {
			y, err := yaml.Marshal(m)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			out.Write(y)
		} else {
			out.Write(bytes.TrimRight(trimSeparators(raw), " \t\r\n"))
			out.WriteByte('\n')
		}
		out.WriteString("---\n")
	}
	return reports, nil
}

// splitDocuments splits a YAML stream at "---" lines, or a stream of JSON
// values into its values.
func splitDocuments(data []byte) ([][]byte, error) {
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		var docs [][]byte
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			if err != nil {
				return nil, fmt.Errorf("invalid JSON: %w", err)
			}
			docs = append(docs, raw)
		}
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading YAML documents: %w", err)
		}
		docs = append(docs, doc)
	}
}

// trimSeparators drops the "---" lines a document may start with.
func trimSeparators(doc []byte) []byte {
	for {
		line, rest, _ := bytes.Cut(doc, []byte("\n"))
		if string(bytes.TrimRight(line, " \t\r")) != "---" {
			return doc
		}
		doc = rest
	}
}

func yamlKind(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case string:
		return "string"
	default:
		return "scalar"
	}
}

// transformObject transforms one resource (recursing into a List) and
// reports whether it changed.
func transformObject(obj map[string]any, t manifestTransformer, where string, reports *[]resourceReport) (bool, error) {
	kind, _ := obj["kind"].(string)
	if kind == "" {
		return false, fmt.Errorf("%s: not a Kubernetes resource (no kind)", where)
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	namespace, _ := meta["namespace"].(string)
	lkind := strings.ToLower(kind)

	if kind == "List" {
		items, ok := obj["items"].([]any)
		if !ok && obj["items"] != nil {
			return false, fmt.Errorf("%s: List items are not a list", where)
		}
		changed := false
		for i, item := range items {
			m, ok := item.(map[string]any)
			if !ok {
				return false, fmt.Errorf("%s: List item %d is not an object", where, i+1)
			}
			c, err := transformObject(m, t, fmt.Sprintf("%s: item %d", where, i+1), reports)
			if err != nil {
				return false, err
			}
			changed = changed || c
		}
		return changed, nil
	}

	path, workload := podTemplatePaths[lkind]
	if !workload {
		*reports = append(*reports, resourceReport{kind: lkind, name: name})
		return false, nil
	}
	tmpl := obj
	if len(path) > 0 {
		var ok bool
		if tmpl, ok = mapAt(obj, path); !ok {
			return false, fmt.Errorf("%s: %s %q has no pod template (%s)", where, lkind, name, strings.Join(path, "."))
		}
	}
	work, err := copyGeneric(tmpl)
	if err != nil {
		return false, fmt.Errorf("%s: %w", where, err)
	}
	if _, ok := work["metadata"].(map[string]any); !ok {
		work["metadata"] = map[string]any{}
	}
	w, err := workloadOf(lkind, name, namespace, work)
	if err != nil {
		return false, fmt.Errorf("%s: %s %q: %w", where, lkind, name, err)
	}
	outcome, err := t.transform(w, work)
	if err != nil {
		return false, fmt.Errorf("%s: %s %q: %w", where, lkind, name, err)
	}
	*reports = append(*reports, resourceReport{kind: lkind, name: name, manifestOutcome: outcome})
	if !outcome.changed {
		return false, nil
	}
	if len(path) == 0 {
		clear(obj)
		maps.Copy(obj, work)
	} else {
		parent, _ := mapAt(obj, path[:len(path)-1])
		parent[path[len(path)-1]] = work
	}
	return true, nil
}

// workloadOf decodes a generic pod template for package inject.
func workloadOf(kind, name, namespace string, tmpl map[string]any) (*inject.Workload, error) {
	data, err := json.Marshal(tmpl)
	if err != nil {
		return nil, err
	}
	var pt corev1.PodTemplateSpec
	if err := json.Unmarshal(data, &pt); err != nil {
		return nil, fmt.Errorf("invalid pod template: %w", err)
	}
	return &inject.Workload{Kind: kind, Name: name, Namespace: namespace, Meta: &pt.ObjectMeta, Spec: &pt.Spec}, nil
}

// mapAt follows path through nested maps.
func mapAt(m map[string]any, path []string) (map[string]any, bool) {
	for _, k := range path {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil, false
		}
		m = next
	}
	return m, true
}

// copyGeneric deep-copies a generic JSON document.
func copyGeneric(m map[string]any) (map[string]any, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// setTemplateAnnotations sets annotations on a generic pod template.
func setTemplateAnnotations(tmpl map[string]any, set map[string]string) {
	if len(set) == 0 {
		return
	}
	meta := tmpl["metadata"].(map[string]any)
	ann, ok := meta["annotations"].(map[string]any)
	if !ok {
		ann = map[string]any{}
		meta["annotations"] = ann
	}
	for k, v := range set {
		ann[k] = v
	}
}

// injectTransformer annotates pod templates for the proxy injector, or,
// with an injector (--manual), adds the proxy itself.
type injectTransformer struct {
	annotations map[string]string
	injector    *inject.Injector
}

func (injectTransformer) verb() string         { return "injected" }
func (injectTransformer) summarizeSkips() bool { return true }

func (t *injectTransformer) transform(w *inject.Workload, tmpl map[string]any) (manifestOutcome, error) {
	if t.injector == nil {
		if skip := inject.Check(w, nil, false); skip != nil {
			return manifestOutcome{skip: skip}, nil
		}
		set := maps.Clone(t.annotations)
		if set == nil {
			set = map[string]string{}
		}
		if _, ok := set[k8s.ProxyInjectAnnotation]; !ok {
			set[k8s.ProxyInjectAnnotation] = k8s.ProxyInjectEnabled
		}
		setTemplateAnnotations(tmpl, set)
		return manifestOutcome{changed: true}, nil
	}

	setTemplateAnnotations(tmpl, t.annotations)
	w, err := workloadOf(w.Kind, w.Name, w.Namespace, tmpl)
	if err != nil {
		return manifestOutcome{}, err
	}
	res, err := t.injector.Inject(w, nil, inject.Options{})
	if err != nil {
		return manifestOutcome{}, err
	}
	if res.Skip != nil {
		return manifestOutcome{skip: res.Skip}, nil
	}
	if _, err := res.Patch.Apply(tmpl); err != nil {
		return manifestOutcome{}, err
	}
	return manifestOutcome{changed: true, warnings: res.Warnings}, nil
}

// uninjectTransformer removes what injection added.
type uninjectTransformer struct{}

func (uninjectTransformer) verb() string         { return "uninjected" }
func (uninjectTransformer) summarizeSkips() bool { return false }

func (uninjectTransformer) transform(_ *inject.Workload, tmpl map[string]any) (manifestOutcome, error) {
	return manifestOutcome{changed: inject.Uninject(tmpl)}, nil
}

// skipWarnings phrase the skip reasons in the summary, as Linkerd's CLI does.
var skipWarnings = map[inject.Reason]string{
	inject.HostNetworkEnabled:             `"hostNetwork: true" detected in %s`,
	inject.SidecarExists:                  "known sidecar detected in %s",
	inject.InjectDisableAnnotationPresent: `"` + k8s.ProxyInjectAnnotation + `: ` + k8s.ProxyInjectDisabled + `" annotation set on %s`,
	inject.InvalidInjectAnnotationPod:     `invalid "` + k8s.ProxyInjectAnnotation + `" annotation value on %s`,
	inject.UDPPortsEnabled:                "UDP port(s) configured on pod spec in %s",
}

// writeSummary writes one input's summary: warnings (skips grouped by
// reason, ignored annotations), then one line per resource.
func writeSummary(w io.Writer, reports []resourceReport, t manifestTransformer) {
	fmt.Fprintln(w)
	if t.summarizeSkips() {
		var warnings []string
		var order []inject.Reason
		byReason := map[inject.Reason][]string{}
		changed := false
		for _, r := range reports {
			changed = changed || r.changed
			for _, msg := range r.warnings {
				warnings = append(warnings, fmt.Sprintf("%s/%s: %s", r.kind, r.name, msg))
			}
			if r.skip == nil {
				continue
			}
			if _, seen := byReason[r.skip.Reason]; !seen {
				order = append(order, r.skip.Reason)
			}
			byReason[r.skip.Reason] = append(byReason[r.skip.Reason], r.kind+"/"+r.name)
		}
		var lines []string
		for _, reason := range order {
			format, ok := skipWarnings[reason]
			if !ok {
				format = string(reason) + " in %s"
			}
			lines = append(lines, fmt.Sprintf(format, strings.Join(byReason[reason], ", ")))
		}
		lines = append(lines, warnings...)
		if !changed {
			lines = append(lines, "no supported objects found")
		}
		for _, l := range lines {
			fmt.Fprintf(w, "⚠ %s\n", l)
		}
		if len(lines) > 0 {
			fmt.Fprintln(w)
		}
	}
	for _, r := range reports {
		status := "skipped"
		if r.changed {
			status = t.verb()
		}
		fmt.Fprintf(w, "%s %q %s\n", r.kind, r.name, status)
	}
	fmt.Fprintln(w)
}
