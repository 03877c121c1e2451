package policy

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
)

// BenchmarkChangeAtScale: 1,000 workloads, each with a Server and an
// AuthorizationPolicy, each watched by its proxy's stream (1,000 streams).
// Each iteration changes a namespace-wide AuthorizationPolicy (it applies
// to every Server: one change, 1,000 new policies) and waits until every stream got its new policy; the
// reported p50/p99/max are the delays from the change to each stream's
// message, over all iterations.
//
//	go test ./controller/policy -run '^$' -bench ChangeAtScale -benchtime 20x
func BenchmarkChangeAtScale(b *testing.B) {
	const n = 1000
	const ns = "scale"
	idx := NewIndex()
	pods := store.NewMemory()
	var objs []any
	for i := range n {
		name := fmt.Sprintf("w%04d", i)
		pods.Apply(&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		})
		objs = append(objs,
			&policy.Server{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: policy.ServerSpec{
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, Port: intstr.FromString("http")}},
			&policy.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: policy.AuthorizationPolicySpec{
				TargetRef:                  policy.TargetRef{Group: policy.GroupName, Kind: policy.KindServer, Name: name},
				RequiredAuthenticationRefs: []policy.TargetRef{{Kind: policy.KindServiceAccount, Name: "client-" + name}}}},
		)
	}
	idx.Replace(objs)
	srv := &Server{Index: idx, Pods: pods, Config: inboundpolicy.Config{DefaultPolicy: policy.AllUnauthenticated}}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	policyv1.RegisterInboundPolicyServer(gs, srv)
	go func() { _ = gs.Serve(lis) }() // stopped below
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	api := policyv1.NewInboundPolicyClient(conn)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Each stream reports when it received a message with the namespace
	// policy at generation g (its name carries g).
	type receipt struct {
		gen int
		at  time.Time
	}
	receipts := make(chan receipt, n)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range n {
		stream, err := api.Watch(ctx, &policyv1.WatchRequest{Workload: fmt.Sprintf(`{"ns":%q,"pod":"w%04d"}`, ns, i)})
		if err != nil {
			b.Fatal(err)
		}
		first, err := stream.Recv()
		if err != nil || len(first.GetPorts()) != 1 {
			b.Fatalf("stream %d: first message %v, err %v", i, first, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				msg, err := stream.Recv()
				if err != nil {
					return
				}
				at := time.Now()
				for _, a := range msg.GetPorts()[0].GetAuthorizations() {
					var g int
					if a.GetName() != "ns-wide" || len(a.GetIdentities()) != 1 {
						continue
					}
					if _, err := fmt.Sscanf(a.GetIdentities()[0], "ops-%d.", &g); err == nil {
						receipts <- receipt{g, at}
					}
				}
			}
		}()
	}

	var delays []time.Duration
	b.ResetTimer()
	for gen := range b.N {
		// Change the namespace-wide policy's service account: every
		// stream's policy changes.
		cur := &policy.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "ns-wide", Namespace: ns}, Spec: policy.AuthorizationPolicySpec{
			TargetRef:                  policy.TargetRef{Kind: policy.KindNamespace, Name: ns},
			RequiredAuthenticationRefs: []policy.TargetRef{{Kind: policy.KindServiceAccount, Name: fmt.Sprintf("ops-%d", gen)}}}}
		start := time.Now()
		idx.Set(cur)
		for got := 0; got < n; {
			select {
			case r := <-receipts:
				if r.gen == gen {
					delays = append(delays, r.at.Sub(start))
					got++
				}
			case <-time.After(time.Minute):
				b.Fatalf("generation %d: %d of %d streams updated after 1m", gen, got, n)
			}
		}
	}
	b.StopTimer()
	slices.Sort(delays)
	pct := func(p float64) float64 {
		return float64(delays[int(p*float64(len(delays)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(0, "ns/op")
}
