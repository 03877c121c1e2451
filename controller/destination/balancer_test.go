package destination

import (
	"fmt"
	"testing"

	"github.com/linkerd-go/linkerd/pkg/k8s"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestBalancerAnnotation: the Service's balancer annotation reaches the
// proxy with its endpoints; a change re-sends them with the new value; an
// unknown value is ignored (the proxy's default).
func TestBalancerAnnotation(t *testing.T) {
	h := newHarness(t, Config{})
	svc := func(opts ...svcOpt) *corev1.Service {
		return newSvc("web", "10.96.0.10", append([]svcOpt{svcPort("http", 80, intstr.FromInt(8080))}, opts...)...)
	}
	h.apply(
		svc(svcAnnotation(k8s.BalancerAlgorithmAnnotation, "round-robin")),
		newSlice("web-a", "web", slicePorts("http=8080"), newEp("10.0.0.1", "web-0"), newEp("10.0.0.2", "web-1")),
		newPod("web-0", "10.0.0.1"), newPod("web-1", "10.0.0.2"),
	)
	sub := h.subscribe("web.ns.svc.cluster.local:80")
	balancers := func() []string {
		var got []string
		for {
			select {
			case tr := <-sub.queue:
				for _, u := range tr.updates {
					if add := u.GetAdd(); add != nil {
						got = append(got, fmt.Sprintf("%s:%d", add.GetBalancer(), len(add.GetEndpoints())))
					}
				}
				sub.sent = tr.state
			default:
				return got
			}
		}
	}
	steps := []struct {
		name  string
		apply *corev1.Service
		want  string // balancer of the single add expected ("-": no update)
	}{
		{"initial", nil, "round-robin"},
		{"changed", svc(svcAnnotation(k8s.BalancerAlgorithmAnnotation, "least-request")), "least-request"},
		{"unchanged", svc(svcAnnotation(k8s.BalancerAlgorithmAnnotation, "least-request")), "-"},
		{"unknown is ignored", svc(svcAnnotation(k8s.BalancerAlgorithmAnnotation, "fastest")), ""},
		{"removed", svc(), "-"},
	}
	for _, s := range steps {
		if s.apply != nil {
			h.apply(s.apply)
		}
		got := balancers()
		switch {
		case s.want == "-" && len(got) != 0:
			t.Errorf("%s: updates %q, want none", s.name, got)
		case s.want != "-" && (len(got) != 1 || got[0] != s.want+":2"):
			t.Errorf("%s: updates %q, want one add of both endpoints with balancer %q", s.name, got, s.want)
		}
	}
}
