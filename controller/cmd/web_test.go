package cmd

import (
	"strings"
	"testing"
)

func TestWebFlags(t *testing.T) {
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"-metrics-api-addr=metrics-api"}, "want host:port"},
		{[]string{"-grafana-url=grafana:3000"}, "want an http(s) URL"},
		{[]string{"-enforced-host=("}, "-enforced-host"},
		{[]string{"-tap-addr=tap"}, "-tap-addr"},
	}
	for _, tt := range tests {
		o := &webOptions{}
		parseFlags(t, o.addFlags, tt.args...)
		_, err := newWebComponent(o, quiet)
		if err == nil || !strings.Contains(err.Error(), tt.err) || !isUsageError(err) {
			t.Errorf("%v: err = %v, want a usage error with %q", tt.args, err, tt.err)
		}
	}
}

// The web server serves the embedded dashboard and its API; with no
// metrics API behind it, the API answers 502 with the reason.
func TestWebServes(t *testing.T) {
	o := &webOptions{}
	parseFlags(t, o.addFlags, "-addr=127.0.0.1:0", "-admin-addr=127.0.0.1:0", "-metrics-api-addr=127.0.0.1:1", "-grafana-url=http://grafana.example")
	c, err := newWebComponent(o, quiet)
	if err != nil {
		t.Fatal(err)
	}
	startComponent(t, c)
	base := "http://" + c.lis.Addr().String()
	waitReady(t, "http://"+c.adminLis.Addr().String())
	if code, body := httpGet(t, base+"/"); code != 200 || !strings.Contains(body, "<title>Linkerd viz</title>") {
		t.Errorf("/: %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/api/config"); code != 200 || !strings.Contains(body, `"grafanaUrl":"http://grafana.example"`) {
		t.Errorf("/api/config: %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/api/namespaces"); code != 502 || !strings.Contains(body, "metrics API") {
		t.Errorf("/api/namespaces without a metrics API: %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/api/namespaces/demo/tap?resource=deployment/web"); code != 503 || !strings.Contains(body, "-tap-addr") {
		t.Errorf("live calls without a tap service: %d %s", code, body)
	}
}
