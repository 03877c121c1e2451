package metricsapi

import (
	"testing"

	vizv1 "github.com/linkerd-go/linkerd/proto/viz/v1"
)

func TestStatPlanQueries(t *testing.T) {
	r := func(kind, ns, name string) *vizv1.Resource {
		return &vizv1.Resource{Kind: kind, Namespace: ns, Name: name}
	}
	tests := []struct {
		name     string
		sel      *vizv1.Resource
		allNS    bool
		to, from *vizv1.Resource
		want     string
	}{
		{"deployments", r("deployment", "demo", ""), false, nil, nil,
			`sum(increase(response_total{direction="inbound", namespace="demo", deployment=~".+"}[1m])) by (namespace, deployment, classification)`},
		{"one pod", r("pod", "demo", "web-1"), false, nil, nil,
			`sum(increase(response_total{direction="inbound", namespace="demo", pod="web-1"}[1m])) by (namespace, pod, classification)`},
		{"jobs, all namespaces", r("job", "", ""), true, nil, nil,
			`sum(increase(response_total{direction="inbound", k8s_job=~".+"}[1m])) by (namespace, k8s_job, classification)`},
		{"namespaces", r("namespace", "", ""), false, nil, nil,
			`sum(increase(response_total{direction="inbound", namespace=~".+"}[1m])) by (namespace, classification)`},
		{"one namespace", r("namespace", "", "demo"), false, nil, nil,
			`sum(increase(response_total{direction="inbound", namespace="demo"}[1m])) by (namespace, classification)`},
		{"services: the clients' view", r("service", "demo", ""), false, nil, nil,
			`sum(increase(response_total{direction="outbound", dst_namespace="demo", dst_service=~".+"}[1m])) by (dst_namespace, dst_service, classification)`},
		{"authorities", r("authority", "demo", ""), false, nil, nil,
			`sum(increase(response_total{direction="inbound", namespace="demo", authority=~".+"}[1m])) by (namespace, authority, classification)`},
		{"to a deployment", r("deployment", "demo", "web"), false, r("deployment", "demo", "voting"), nil,
			`sum(increase(response_total{direction="outbound", namespace="demo", deployment="web", dst_namespace="demo", dst_deployment="voting"}[1m])) by (namespace, deployment, classification)`},
		{"to a job in another namespace", r("deployment", "demo", "web"), false, r("job", "batch", "x"), nil,
			`sum(increase(response_total{direction="outbound", namespace="demo", deployment="web", dst_namespace="batch", dst_job="x"}[1m])) by (namespace, deployment, classification)`},
		{"from a deployment", r("deployment", "demo", ""), false, nil, r("deployment", "demo", "web"),
			`sum(increase(response_total{direction="outbound", namespace="demo", deployment="web", dst_namespace="demo", dst_deployment=~".+"}[1m])) by (dst_namespace, dst_deployment, classification)`},
		{"from a namespace", r("pod", "demo", ""), false, nil, r("namespace", "", "other"),
			`sum(increase(response_total{direction="outbound", namespace="other", dst_namespace="demo", dst_pod=~".+"}[1m])) by (dst_namespace, dst_pod, classification)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := responsesQuery(statPlan(tt.sel, tt.allNS, tt.to, tt.from), "1m")
			if got != tt.want {
				t.Errorf("query\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestQuotedValues(t *testing.T) {
	got := selector{eq("pod", `we"b\x`)}.String()
	if want := `{pod="we\"b\\x"}`; got != want {
		t.Errorf("selector = %s, want %s", got, want)
	}
}
