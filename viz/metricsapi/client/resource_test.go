package client

import (
	"testing"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
	"google.golang.org/protobuf/proto"
)

func TestParseResource(t *testing.T) {
	tests := []struct {
		args    []string
		want    *vizv1.Resource
		wantErr bool
	}{
		{args: []string{"deploy"}, want: &vizv1.Resource{Kind: "deployment", Namespace: "demo"}},
		{args: []string{"deploy/web"}, want: &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "web"}},
		{args: []string{"Deployments", "web"}, want: &vizv1.Resource{Kind: "deployment", Namespace: "demo", Name: "web"}},
		{args: []string{"ns/demo"}, want: &vizv1.Resource{Kind: "namespace", Name: "demo"}},
		{args: []string{"po/web-1"}, want: &vizv1.Resource{Kind: "pod", Namespace: "demo", Name: "web-1"}},
		{args: []string{"svc"}, want: &vizv1.Resource{Kind: "service", Namespace: "demo"}},
		{args: []string{"au"}, want: &vizv1.Resource{Kind: "authority", Namespace: "demo"}},
		{args: []string{"cronjob/x"}, wantErr: true},
		{args: []string{"deploy/"}, wantErr: true},
		{args: []string{"deploy/web", "x"}, wantErr: true},
		{args: []string{}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseResource("demo", tt.args...)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseResource(%q) = %v, want an error", tt.args, got)
			}
			continue
		}
		if err != nil || !proto.Equal(got, tt.want) {
			t.Errorf("ParseResource(%q) = %v, %v; want %v", tt.args, got, err, tt.want)
		}
	}
}

func TestSuccessRateAndRPS(t *testing.T) {
	tests := []struct {
		stats *vizv1.Stats
		rate  float64
		ok    bool
		rps   float64
	}{
		{stats: nil, ok: false},
		{stats: &vizv1.Stats{WindowSeconds: 60}, ok: false},
		{stats: &vizv1.Stats{SuccessCount: 30, FailureCount: 90, WindowSeconds: 60}, rate: 0.25, ok: true, rps: 2},
		{stats: &vizv1.Stats{SuccessCount: 60, WindowSeconds: 60}, rate: 1, ok: true, rps: 1},
	}
	for _, tt := range tests {
		rate, ok := SuccessRate(tt.stats)
		if rate != tt.rate || ok != tt.ok {
			t.Errorf("SuccessRate(%v) = %v, %v; want %v, %v", tt.stats, rate, ok, tt.rate, tt.ok)
		}
		if rps := RPS(tt.stats); rps != tt.rps {
			t.Errorf("RPS(%v) = %v, want %v", tt.stats, rps, tt.rps)
		}
	}
}
