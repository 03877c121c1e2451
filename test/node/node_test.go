// Package node_test runs real pods on test/cluster's single-node cluster
// from the project's own images: a Deployment behind a Service reached by
// its cluster DNS name from another pod, and linkerd-init in an init
// container writing the pod's iptables rules the way the chart runs it (a
// non-root user with NET_ADMIN and NET_RAW, no privilege escalation).
//
// It needs root, the binaries from hack/build-k8s.sh, containerd, runc,
// the CNI plugins and kubectl; without them it skips, and fails when
// CI=true.
package node_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/internal/images"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/proxyinit"
	"github.com/linkerd-go/linkerd/test/cluster"
)

// tag is the tag of the project images the test builds and loads.
const tag = "test"

func TestMain(m *testing.M) { cluster.Main(m) }

func ref(t *testing.T, name string) string {
	t.Helper()
	r, err := images.Ref(name, tag)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// webManifest is a Deployment of two testapp replicas, each answering GET /
// with its pod name, behind the Service "web" (port 80).
const webManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %[1]s}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: %[2]s
        args: ["-name=$(POD_NAME)", "-grpc=0", "-tcp=0", "-banner=0"]
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %[1]s}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
`

// initPodManifest is a pod whose init container runs linkerd-init from the
// proxy image as the chart does, before the testapp container.
const initPodManifest = `apiVersion: v1
kind: Pod
metadata: {name: meshed, namespace: %[1]s}
spec:
  restartPolicy: Never
  initContainers:
  - name: linkerd-init
    image: %[2]s
    command: ["%[3]s"]
    args: ["--incoming-proxy-port=4143", "--outgoing-proxy-port=4140", "--proxy-uid=2102",
           "--inbound-ports-to-ignore=4190,4191", "--firewall-bin-path=iptables-legacy",
           "--firewall-save-bin-path=iptables-legacy-save"]
    securityContext:
      runAsUser: 65534
      runAsGroup: 65534
      runAsNonRoot: true
      allowPrivilegeEscalation: false
      privileged: false
      capabilities: {add: [NET_ADMIN, NET_RAW]}
  containers:
  - name: app
    image: %[4]s
    args: ["-grpc=0", "-tcp=0", "-banner=0"]
`

func TestNodeRunsPods(t *testing.T) {
	begin := time.Now()
	n := cluster.StartNode(t, cluster.NodeOptions{ImageTag: tag})
	cluster.RequireKubectl(t)
	t.Logf("node up in %v (StartNode: %v)", n.StartupTime.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	ns := n.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	deployed := time.Now()
	n.Apply(t, fmt.Sprintf(webManifest, ns, ref(t, images.TestApp)))
	firstRunning := waitRunning(ctx, t, n, ns, "app=web", 2)
	t.Logf("first pod Running %v after the Deployment was applied", firstRunning.Sub(deployed).Round(time.Millisecond))
	n.Kubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=2m")
	t.Logf("Deployment available %v after it was applied", time.Since(deployed).Round(time.Millisecond))

	pods, err := n.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if len(names) != 2 {
		t.Fatalf("pods %v, want 2", names)
	}

	t.Run("service by DNS name from a pod", func(t *testing.T) {
		// Requests on fresh connections: kube-proxy spreads them over both
		// replicas (20 all on one has probability 2^-19) once its rules
		// have caught up with the second endpoint, hence the retries.
		for _, host := range []string{"web." + ns + ".svc." + cluster.ClusterDomain, "web"} {
			var got []string
			var seen map[string]int
			for attempt := 0; attempt < 10 && !slices.Equal(got, names); attempt++ {
				if attempt > 0 {
					time.Sleep(time.Second)
				}
				out := n.Kubectl(t, "-n", ns, "exec", names[0], "-c", "app", "--",
					"fetch", "-timeout=60s", "-count=20", "http://"+host+"/")
				seen = map[string]int{}
				for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
					seen[strings.TrimPrefix(line, "testapp ")]++
				}
				got = got[:0]
				for name := range seen {
					got = append(got, name)
				}
				slices.Sort(got)
			}
			if !slices.Equal(got, names) {
				t.Errorf("http://%s/ answered by %v (counts %v), want both replicas %v", host, got, seen, names)
			}
		}
	})

	t.Run("service cluster IP from the node", func(t *testing.T) {
		svc, err := n.Client.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: &http.Transport{DialContext: n.DialContext}, Timeout: 10 * time.Second}
		resp, err := client.Get("http://" + net.JoinHostPort(svc.Spec.ClusterIP, "80") + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "testapp web-") {
			t.Fatalf("GET via cluster IP %s: %s %q (%v)", svc.Spec.ClusterIP, resp.Status, body, err)
		}
		out, err := n.Command(ctx, "ip", "-o", "-4", "addr", "show", "dev", "node0").CombinedOutput()
		if err != nil || !strings.Contains(string(out), cluster.NodeIP+"/24") {
			t.Fatalf("ip addr in the node: %v\n%s", err, out)
		}
	})

	t.Run("linkerd-init in an init container", func(t *testing.T) {
		n.Apply(t, fmt.Sprintf(initPodManifest, ns, ref(t, images.Proxy), k8s.ProxyInitBinPath, ref(t, images.TestApp)))
		waitRunning(ctx, t, n, ns, "", 1, "meshed")
		pod, err := n.Client.CoreV1().Pods(ns).Get(ctx, "meshed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s := pod.Status.InitContainerStatuses; len(s) != 1 || s[0].State.Terminated == nil || s[0].State.Terminated.ExitCode != 0 {
			t.Fatalf("linkerd-init status %+v, want terminated with exit code 0", s)
		}
		logs := n.Kubectl(t, "-n", ns, "logs", "meshed", "-c", "linkerd-init")
		// linkerd-init logs the nat table it reads back.
		for _, want := range []string{proxyinit.RedirectChain, proxyinit.OutputChain, "--to-ports 4143", "--uid-owner 2102"} {
			if !strings.Contains(logs, want) {
				t.Errorf("linkerd-init's output lacks %q:\n%s", want, logs)
			}
		}
	})
	t.Logf("test took %v", time.Since(begin).Round(time.Millisecond))
}

// waitRunning waits until want pods (matching selector, or named names)
// run every container, and returns when the first of them did.
func waitRunning(ctx context.Context, t *testing.T, n *cluster.Node, ns, selector string, want int, names ...string) time.Time {
	t.Helper()
	var first time.Time
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods, err := n.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		var states []string
		for _, p := range pods.Items {
			if len(names) > 0 && !slices.Contains(names, p.Name) {
				continue
			}
			states = append(states, p.Name+"="+string(p.Status.Phase))
			if p.Status.Phase == corev1.PodRunning {
				running++
				if first.IsZero() {
					first = time.Now()
				}
			}
			if p.Status.Phase == corev1.PodFailed {
				t.Fatalf("pod %s failed: %+v", p.Name, p.Status)
			}
		}
		if running >= want {
			return first
		}
		if time.Now().After(deadline) {
			out, _, _ := n.RunKubectl(ctx, "-n", ns, "describe", "pods")
			t.Fatalf("%d of %d pods running after 2m: %v\n%s", running, want, states, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
