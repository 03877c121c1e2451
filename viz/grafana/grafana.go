// Package grafana holds linkerd viz's Grafana dashboards (dashboards/*.json:
// top line, namespace, deployment, pod, route, authority), for the user's
// own Grafana: import them, with a Prometheus data source that scrapes the
// proxies (viz's own, or yours). The viz chart ships them; the dashboard
// links to them by uid when it knows the Grafana's URL (grafana.url).
package grafana

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
)

//go:embed dashboards/*.json
var files embed.FS

// Dashboard is the part of a Grafana dashboard this package reads.
type Dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []Panel `json:"panels"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is a dashboard panel with its queries.
type Panel struct {
	ID      int      `json:"id"`
	Type    string   `json:"type"`
	Title   string   `json:"title"`
	Targets []Target `json:"targets"`
	Panels  []Panel  `json:"panels"` // a collapsed row's panels
}

// Target is one PromQL query of a panel.
type Target struct {
	RefID string `json:"refId"`
	Expr  string `json:"expr"`
}

// Variable is a template variable ($namespace, ...).
type Variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Definition string `json:"definition"`
}

// Files returns the dashboards' JSON files by name (e.g.
// "linkerd-deployment.json"), as Grafana imports them.
func Files() (map[string][]byte, error) {
	entries, err := fs.ReadDir(files, "dashboards")
	if err != nil {
		return nil, fmt.Errorf("grafana dashboards: %w", err)
	}
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		b, err := files.ReadFile(path.Join("dashboards", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("grafana dashboards: %w", err)
		}
		out[e.Name()] = b
	}
	return out, nil
}

// Dashboards parses every dashboard, sorted by uid.
func Dashboards() ([]Dashboard, error) {
	fm, err := Files()
	if err != nil {
		return nil, err
	}
	var ds []Dashboard
	for name, b := range fm {
		var d Dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("grafana dashboard %s: %w", name, err)
		}
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].UID < ds[j].UID })
	return ds, nil
}

// Query is one panel query of a dashboard.
type Query struct {
	Dashboard string // uid
	Panel     string // title
	RefID     string
	Expr      string
}

// Queries lists every panel query of d (rows' panels included).
func (d Dashboard) Queries() []Query {
	var qs []Query
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				qs = append(qs, Query{Dashboard: d.UID, Panel: p.Title, RefID: t.RefID, Expr: t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return qs
}

var varRef = regexp.MustCompile(`\$(\w+)|\$\{(\w+)\}`)

// Variables returns the template variables expr refers to.
func Variables(expr string) []string {
	var names []string
	for _, m := range varRef.FindAllStringSubmatch(expr, -1) {
		names = append(names, m[1]+m[2])
	}
	return names
}

// Expand substitutes template variables in expr with values; a variable
// without a value is an error.
func Expand(expr string, values map[string]string) (string, error) {
	var missing []string
	out := varRef.ReplaceAllStringFunc(expr, func(ref string) string {
		name := strings.Trim(ref, "${}")
		v, ok := values[name]
		if !ok {
			missing = append(missing, name)
			return ref
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for $%s in %s", strings.Join(missing, ", $"), expr)
	}
	return out, nil
}
