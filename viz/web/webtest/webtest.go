// Package webtest checks the dashboard in a browser as a user reads it:
// the same checks run against the web server with fixed data (viz/web's
// tests) and against the demo on the local mesh (test/dashboard).
package webtest

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/linkerd-go/linkerd/internal/browsertest"
)

// GraphEdge is an edge of the dashboard's topology graph.
type GraphEdge struct {
	Src  string `json:"src"`
	Dst  string `json:"dst"`
	MTLS bool   `json:"mtls"`
}

// percent parses "74.00%".
func percent(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	return v, err == nil && strings.HasSuffix(s, "%")
}

// CheckDemo loads the dashboard at base and checks what the demo app
// shows: namespace demo listed; its topology graph drawn with the demo's
// calls (bot->web, web->items, web->voting), all mTLS; web's and voting's
// success rates below 100% (the broken choice), items' at 100%; web's
// page with its pod, its outbound routes to voting and items, its edges,
// its live calls with the broken vote failing with gRPC Unknown (2);
// namespace demo's success rate below 100%.
// It saves screenshots of each page.
func CheckDemo(b *browsertest.Browser, base string) {
	t := b.T()
	t.Helper()

	start := time.Now()
	b.Do("load the dashboard", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#namespaces-table tr[data-key="demo"]`)))
	t.Logf("first render of the namespaces in %v", time.Since(start).Round(time.Millisecond))
	b.Screenshot("1-namespaces")

	b.Do("open namespace demo", chromedp.Click(chromedp.CSS(`#namespaces-table tr[data-key="demo"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#workloads-table tr[data-key="deployment/web"]`)))
	want := []string{"bot->web", "web->items", "web->voting"}
	edges := browsertest.Poll(b, "the topology graph's edges",
		`window.vizTopology ? window.vizTopology.edges().map(e => ({src: e.source().data("label"), dst: e.target().data("label"), mtls: !!e.data("mtls")})) : []`,
		func(es []GraphEdge) bool {
			var got []string
			for _, e := range es {
				got = append(got, e.Src+"->"+e.Dst)
			}
			for _, w := range want {
				if !slices.Contains(got, w) {
					return false
				}
			}
			return true
		})
	for _, e := range edges {
		if slices.Contains(want, e.Src+"->"+e.Dst) && !e.MTLS {
			t.Errorf("graph edge %s->%s is not shown as mTLS", e.Src, e.Dst)
		}
	}
	t.Logf("graph edges: %+v", edges)
	drawn := browsertest.Eval[bool](b, `(() => { const cy = window.vizTopology; const bb = cy.elements().renderedBoundingBox();
		return cy.nodes().length >= 4 && cy.elements().every(e => e.visible()) && bb.w > 50 && bb.h > 50 &&
			document.querySelectorAll("#topology-graph canvas").length > 0; })()`)
	if !drawn {
		t.Error("the topology graph's nodes and edges are not all drawn")
	}
	// The edges table says the same.
	edgeRows := browsertest.Eval[string](b, `document.querySelector("#edges-table").innerText`)
	for _, w := range want {
		src, dst, _ := strings.Cut(w, "->")
		if !strings.Contains(edgeRows, src+"\t"+dst) {
			t.Errorf("edges table lacks %s:\n%s", w, edgeRows)
		}
	}

	srOf := func(name string) string {
		return `(document.querySelector('#workloads-table tr[data-key="deployment/` + name + `"] .sr') || {}).textContent || ""`
	}
	webSR := browsertest.Poll(b, "web's failing success rate", srOf("web"), func(s string) bool { v, ok := percent(s); return ok && v < 100 && v > 0 })
	votingSR := browsertest.Poll(b, "voting's failing success rate", srOf("voting"), func(s string) bool { v, ok := percent(s); return ok && v < 100 })
	itemsSR := browsertest.Poll(b, "items' success rate", srOf("items"), func(s string) bool { _, ok := percent(s); return ok })
	if itemsSR != "100.00%" {
		t.Errorf("items' success rate %s, want 100.00%%", itemsSR)
	}
	t.Logf("success rates: web %s, voting %s, items %s", webSR, votingSR, itemsSR)
	if browsertest.Eval[bool](b, `document.querySelector('#workloads-table tr[data-key="deployment/voting"] .sr').classList.contains("good")`) {
		t.Error("voting's failing success rate is styled as good")
	}
	b.Screenshot("2-namespace-demo")

	// Live: the page refreshes its metrics by itself.
	before := browsertest.Eval[string](b, `document.getElementById("status").textContent`)
	browsertest.Poll(b, "a refresh of the metrics", `document.getElementById("status").textContent`,
		func(s string) bool { return strings.HasPrefix(s, "updated ") && s != before })

	b.Do("open deployment web", chromedp.Click(chromedp.CSS(`#workloads-table tr[data-key="deployment/web"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#pods-table`)),
		chromedp.WaitVisible(chromedp.CSS(`#routes-outbound-table`)),
		chromedp.WaitVisible(chromedp.CSS(`#edges-table`)))
	pods := browsertest.Eval[string](b, `document.querySelector("#pods-table").innerText`)
	if !strings.Contains(pods, "web") {
		t.Errorf("web's pods table lists no web pod:\n%s", pods)
	}
	out := browsertest.Eval[string](b, `document.querySelector("#routes-outbound-table").innerText`)
	if !strings.Contains(out, "voting") || !strings.Contains(out, "items") {
		t.Errorf("web's outbound routes do not name voting and items:\n%s", out)
	}
	b.Screenshot("3-deployment-web")

	// Live calls: web's calls stream in, the broken vote's failure shown
	// with its gRPC status.
	failing := browsertest.Poll(b, "a live call of web failing with gRPC Unknown (2)",
		`Array.from(document.querySelectorAll("#tap-table tbody tr.failed")).map(r => r.innerText).find(t => t.includes("Unknown (2)")) || ""`,
		func(s string) bool { return s != "" })
	if !strings.Contains(failing, "outbound") || !strings.Contains(failing, "/linkerdgo.demo.v1.Voting/Vote") || !strings.Contains(failing, "voting") {
		t.Errorf("the failing live call does not show web's outbound vote to voting: %q", failing)
	}
	if state := browsertest.Eval[string](b, `document.getElementById("tap-state").textContent`); state != "live" {
		t.Errorf("the live calls' state is %q, want live", state)
	}
	rows := browsertest.Eval[int](b, `document.querySelectorAll("#tap-table tbody tr").length`)
	t.Logf("live calls: %d rows; the failing vote: %q", rows, failing)
	b.Screenshot("3b-deployment-web-live-calls")
	b.Do("stop the live calls", chromedp.Click(chromedp.CSS(`#tap-toggle`)))
	browsertest.Poll(b, "the live calls stopped", `document.getElementById("tap-toggle").textContent + "|" + document.getElementById("tap-state").textContent`,
		func(s string) bool { return s == "Start|stopped" })

	// Back to the namespaces: demo's success rate is below 100% too.
	b.Do("back to the namespaces", chromedp.Click(chromedp.CSS(`#crumbs a[href="#/"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#namespaces-table tr[data-key="demo"]`)))
	nsSR := browsertest.Poll(b, "namespace demo's failing success rate",
		`(document.querySelector('#namespaces-table tr[data-key="demo"] .sr') || {}).textContent || ""`,
		func(s string) bool { v, ok := percent(s); return ok && v < 100 && v > 0 })
	t.Logf("namespace demo's success rate: %s", nsSR)
	b.Screenshot("4-namespaces")
}
