package metricsapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

func TestSelfCheck(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	downSrv, err := NewServer(Config{PrometheusURL: downURL})
	if err != nil {
		t.Fatal(err)
	}
	scraping := &fakeProm{series: []series{
		{match: []string{`count(up{job="linkerd-proxy"})`}, labels: l(), value: "3"},
		{match: []string{`up{job="linkerd-proxy", pod=~".+"}`}, labels: l("namespace", "demo", "pod", "web-1", "instance", "10.0.0.1:4191"), value: "1"},
	}}
	tests := []struct {
		name string
		srv  *Server
		want []string // "status description[: message prefix]" per result
	}{
		{"prometheus scrapes proxies", newTestServer(t, scraping), []string{
			"OK can query Prometheus", "OK Prometheus scrapes proxies", "OK can list pods",
		}},
		{"no proxy scraped", newTestServer(t, &fakeProm{}), []string{
			"OK can query Prometheus", `WARNING Prometheus scrapes proxies: no linkerd-proxy target in Prometheus at http://`, "OK can list pods",
		}},
		{"prometheus unreachable", downSrv, []string{
			"FAILED can query Prometheus: cannot query Prometheus at " + downURL, "FAILED can list pods: query up",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.srv.SelfCheck(context.Background(), &vizv1.SelfCheckRequest{})
			if err != nil {
				t.Fatalf("SelfCheck: %v", err)
			}
			res := resp.GetResults()
			if len(res) != len(tt.want) {
				t.Fatalf("got %d results %v, want %d", len(res), res, len(tt.want))
			}
			for i, r := range res {
				got := r.GetStatus().String() + " " + r.GetDescription()
				if r.GetMessage() != "" {
					got += ": " + r.GetMessage()
				}
				if !strings.HasPrefix(got, tt.want[i]) {
					t.Errorf("result %d = %q, want prefix %q", i, got, tt.want[i])
				}
			}
		})
	}
}
