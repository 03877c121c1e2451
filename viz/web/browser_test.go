package web

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/linkerd-go/linkerd/internal/browsertest"
	"github.com/linkerd-go/linkerd/viz/web/webtest"
)

// demoMetrics answers as the metrics API does for the demo app: the bot
// calls web, web calls items and voting, all over mTLS; voting fails the
// broken choice.
func demoMetrics() *fakeMetrics {
	dep := func(n string) Resource { return Resource{Kind: "deployment", Namespace: "demo", Name: n} }
	id := func(n string) string { return n + ".demo.serviceaccount.identity.linkerd.cluster.local" }
	stat := func(r Resource, sr, rps float64) Stat {
		return Stat{Resource: r, MeshedPods: 1, RunningPods: 1, SuccessRate: ptr(sr), RPS: rps,
			LatencyP50: ptr(1.2), LatencyP95: ptr(4.8), LatencyP99: ptr(9.6), TCPConnections: 2}
	}
	return &fakeMetrics{
		stats: map[string][]Stat{
			"namespace": {stat(Resource{Kind: "namespace", Name: "demo"}, 0.91, 30), stat(Resource{Kind: "namespace", Name: "linkerd"}, 1, 1)},
			"deployment": {
				{Resource: dep("bot"), MeshedPods: 1, RunningPods: 1},
				stat(dep("web"), 0.74, 10), stat(dep("items"), 1, 10), stat(dep("voting"), 0.8, 5),
			},
			"pod": {stat(Resource{Kind: "pod", Namespace: "demo", Name: "web"}, 0.74, 10)},
		},
		edges: []Edge{
			{Src: dep("bot"), Dst: dep("web"), ClientID: id("bot"), ServerID: id("web")},
			{Src: dep("web"), Dst: dep("items"), ClientID: id("web"), ServerID: id("items")},
			{Src: dep("web"), Dst: dep("voting"), ClientID: id("web"), ServerID: id("voting")},
		},
		routes: []Route{
			{Route: "[DEFAULT]", Authority: "items.demo.svc.cluster.local:8080", SuccessRate: ptr(1), RPS: 10},
			{Route: "[DEFAULT]", Authority: "voting.demo.svc.cluster.local:8080", SuccessRate: ptr(0.8), RPS: 5},
		},
	}
}

// The built dashboard in headless Chromium, over fixed demo-like data.
func TestDashboardInBrowser(t *testing.T) {
	chromium := browsertest.Find(t)
	tap := serveTap(t, &fakeTap{events: demoTapEvents(), repeat: 200 * time.Millisecond})
	h, err := New(Config{Metrics: demoMetrics(), Tap: tap, GrafanaURL: "http://grafana.example:3000"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	// Closed after the browser (cleanups run last first), whose live-calls
	// stream would hold it open.
	t.Cleanup(srv.Close)
	b := browsertest.Start(t, chromium, browsertest.ArtifactsDir(t, "web"))
	webtest.CheckDemo(b, srv.URL)
	// Grafana links, as configured.
	if href := browsertest.Eval[string](b, `document.querySelector('#namespaces-table tr[data-key="demo"] a.grafana').href`); href != "http://grafana.example:3000/d/linkerd-namespace/linkerd-namespace?var-namespace=demo" {
		t.Errorf("namespace demo's Grafana link: %s", href)
	}
	b.Do("open deployment web", chromedp.Navigate(srv.URL+"/#/namespaces/demo/deployment/web"), chromedp.WaitVisible(chromedp.CSS("#summary a.grafana")))
	if href := browsertest.Eval[string](b, `document.querySelector("#summary a.grafana").href`); href != "http://grafana.example:3000/d/linkerd-deployment/linkerd-deployment?var-namespace=demo&var-deployment=web" {
		t.Errorf("web's Grafana link: %s", href)
	}
}
