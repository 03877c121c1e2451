package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestRun(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch r.URL.Path {
		case "/flaky":
			if n%3 != 0 { // two failures, then a success
				http.Error(w, "not yet", http.StatusServiceUnavailable)
				return
			}
		case "/down":
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		case "/header":
			fmt.Fprint(w, r.Header.Get("X-Test"))
			return
		}
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer srv.Close()

	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantOut   string
		wantErr   string
		wantCalls int64
	}{
		{name: "ok", args: []string{srv.URL + "/a"}, wantOut: "hello /a", wantCalls: 1},
		{name: "retries until 2xx", args: []string{"-interval", "1ms", srv.URL + "/flaky"}, wantOut: "hello /flaky", wantCalls: 3},
		{name: "count", args: []string{"-count", "3", srv.URL + "/b"}, wantOut: "hello /b\nhello /b\nhello /b", wantCalls: 3},
		{name: "header", args: []string{"-header", "X-Test: yes", srv.URL + "/header"}, wantOut: "yes", wantCalls: 1},
		{name: "gives up", args: []string{"-timeout", "50ms", "-interval", "10ms", srv.URL + "/down"}, wantCode: 1, wantErr: "500 Internal Server Error: broken"},
		{name: "no url", args: nil, wantCode: 2, wantErr: "usage"},
		{name: "bad count", args: []string{"-count", "0", srv.URL}, wantCode: 2, wantErr: "usage"},
		{name: "bad header", args: []string{"-header", "nocolon", srv.URL}, wantCode: 2, wantErr: "want 'Name: value'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			var out, errOut bytes.Buffer
			code := run(tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tt.wantCode, errOut.String())
			}
			if tt.wantCode == 0 && out.String() != tt.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tt.wantOut)
			}
			if !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tt.wantErr)
			}
			if tt.wantCalls > 0 && calls.Load() != tt.wantCalls {
				t.Errorf("%d requests, want %d", calls.Load(), tt.wantCalls)
			}
		})
	}
}
