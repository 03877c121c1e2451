package grafana

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// Every dashboard Linkerd ships a counterpart of is here, each well
// formed: its uid is its file's name, every panel has queries, and every
// variable a query uses is defined by the dashboard.
func TestDashboards(t *testing.T) {
	fm, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := Dashboards()
	if err != nil {
		t.Fatal(err)
	}
	var uids []string
	for _, d := range ds {
		uids = append(uids, d.UID)
		if _, ok := fm[d.UID+".json"]; !ok {
			t.Errorf("dashboard %s is not in %s.json", d.UID, d.UID)
		}
		if d.Title == "" {
			t.Errorf("%s: no title", d.UID)
		}
		defined := map[string]bool{}
		for _, v := range d.Templating.List {
			defined[v.Name] = true
			// A variable's own query may only use variables defined before it.
			for _, ref := range Variables(v.Definition) {
				if !defined[ref] {
					t.Errorf("%s: variable %s refers to $%s, not defined before it", d.UID, v.Name, ref)
				}
			}
		}
		if !defined["datasource"] {
			t.Errorf("%s: no datasource variable: users pick their Prometheus", d.UID)
		}
		for _, p := range d.Panels {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", d.UID, p.Title)
			}
		}
		qs := d.Queries()
		if len(qs) < 3 {
			t.Errorf("%s: %d queries", d.UID, len(qs))
		}
		for _, q := range qs {
			if strings.TrimSpace(q.Expr) == "" {
				t.Errorf("%s/%s: empty query", d.UID, q.Panel)
			}
			for _, ref := range Variables(q.Expr) {
				if !defined[ref] {
					t.Errorf("%s/%s: query uses undefined $%s", d.UID, q.Panel, ref)
				}
			}
			if strings.Count(q.Expr, "(") != strings.Count(q.Expr, ")") || strings.Count(q.Expr, "{") != strings.Count(q.Expr, "}") {
				t.Errorf("%s/%s: unbalanced query %s", d.UID, q.Panel, q.Expr)
			}
		}
	}
	want := []string{"linkerd-authority", "linkerd-deployment", "linkerd-namespace", "linkerd-pod", "linkerd-route", "linkerd-top-line"}
	if !slices.Equal(uids, want) {
		t.Errorf("dashboards %v, want %v", uids, want)
	}
	for name, b := range fm {
		if !json.Valid(b) {
			t.Errorf("%s: invalid JSON", name)
		}
	}
}

func TestExpand(t *testing.T) {
	tests := []struct {
		expr, want, err string
	}{
		{`x{namespace="$namespace",deployment="${deployment}"}`, `x{namespace="demo",deployment="web"}`, ""},
		{`sum(x)`, `sum(x)`, ""},
		{`x{pod="$pod"}`, "", "no value for $pod"},
	}
	for _, tt := range tests {
		got, err := Expand(tt.expr, map[string]string{"namespace": "demo", "deployment": "web"})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Expand(%s) err = %v, want %s", tt.expr, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Expand(%s) = %q, %v; want %q", tt.expr, got, err, tt.want)
		}
	}
}
