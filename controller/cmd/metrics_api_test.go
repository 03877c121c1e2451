package cmd

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// TestMetricsAPIComponent runs the metrics API against a stand-in
// Prometheus that knows one meshed pod with no traffic, and asks it over
// gRPC, as the CLI does.
func TestMetricsAPIComponent(t *testing.T) {
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		result := `[]`
		if strings.HasPrefix(r.FormValue("query"), "up{") {
			result = `[{"metric":{"namespace":"demo","pod":"web","deployment":"web","instance":"10.0.0.5:4191"},"value":[1700000000,"1"]}]`
		}
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":` + result + `}}`))
	}))
	defer prom.Close()
	o := &metricsAPIOptions{}
	parseFlags(t, o.addFlags, "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-prometheus-url", prom.URL, "-pods", "prometheus")
	c, err := newMetricsAPIComponent(o, quiet)
	if err != nil {
		t.Fatal(err)
	}
	startComponent(t, c)
	waitReady(t, "http://"+c.adminLis.Addr().String())

	api, err := client.Dial(c.lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	resp, err := api.StatSummary(context.Background(), &vizv1.StatSummaryRequest{Selector: &vizv1.Resource{Kind: "deploy", Namespace: "demo"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Rows) != 1 || resp.Rows[0].GetResource().GetName() != "web" || resp.Rows[0].GetMeshedPods() != 1 || resp.Rows[0].GetStats() != nil {
		t.Errorf("StatSummary = %v, want web, 1 meshed pod, no stats", resp)
	}
}

func TestMetricsAPIBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "-prometheus-url is required"},
		{[]string{"-prometheus-url", "http://127.0.0.1:9090", "-pods", "etcd"}, `-pods must be kubernetes or prometheus, not "etcd"`},
		{[]string{"-prometheus-url", "http://127.0.0.1:9090", "-pods", "prometheus", "-kubeconfig", "x"}, "-kubeconfig needs -pods=kubernetes"},
	}
	for _, tt := range tests {
		o := &metricsAPIOptions{}
		parseFlags(t, o.addFlags, tt.args...)
		_, err := newMetricsAPIComponent(o, quiet)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want a usage error with %q", tt.args, err, tt.want)
		}
	}
}
