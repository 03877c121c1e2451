package cmd

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVizDashboardBadInput(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"viz", "dashboard", "--show", "browser"}, `--show must be one of linkerd, grafana or url, not "browser"`},
		{[]string{"viz", "dashboard", "--port", "70000"}, "--port 70000: want 0-65535"},
		{[]string{"viz", "dashboard", "--address", "127.0.0.1", "--port", port}, "port " + port + " on 127.0.0.1 is already in use (is a dashboard already running?): choose another with --port"},
		{[]string{"viz", "dashboard", "--port", "0", "--state-dir", t.TempDir()}, "no local mesh is up at"},
		{[]string{"viz", "dashboard", "extra"}, "unknown command"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := Execute(context.Background(), tt.args, Env{Stdout: &stdout, Stderr: &stderr})
		if code == 0 || !strings.Contains(stderr.String(), tt.want) || strings.Count(strings.TrimSpace(stderr.String()), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q; want one line with %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}

// forward copies connections both ways, and waitDashboard reads the
// Grafana URL through it.
func TestDashboardForward(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/config" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, `{"grafanaUrl":"http://grafana.example"}`)
	}))
	defer web.Close()
	lis, err := listenDashboard("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var d net.Dialer
		forward(ctx, lis, func(ctx context.Context) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", web.Listener.Addr().String())
		})
	}()
	url := "http://" + lis.Addr().String()
	grafana, err := waitDashboard(ctx, url, 5*time.Second)
	if err != nil || grafana != "http://grafana.example" {
		t.Errorf("waitDashboard = %q, %v", grafana, err)
	}
	resp, err := http.Get(url + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /nothing through the forward: %d", resp.StatusCode)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("forward did not return after cancel")
	}
	if _, err := net.Dial("tcp", lis.Addr().String()); err == nil {
		t.Error("the dashboard port still accepts connections after cancel")
	}
}
