package cmd

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/linkerd-go/linkerd/pkg/k8s"
)

const (
	// vizNamespace is the extension's namespace unless --viz-namespace.
	vizNamespace = "linkerd-viz"
	webPodPort   = 8084
)

// kubeDashboard port-forwards to a running web pod of linkerd-viz: each
// connection to the local port is a stream of one SPDY connection to the
// API server's pods/portforward.
func kubeDashboard(ctx context.Context, global *GlobalOptions, ns string) (*dashboardBackend, error) {
	cfg, err := k8s.LoadRESTConfig(global.Kubeconfig, global.KubeContext)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "linkerd.io/extension=viz,component=web"})
	if err != nil {
		return nil, fmt.Errorf("looking for the viz web pod: %w", err)
	}
	var pod *corev1.Pod
	for i := range pods.Items {
		if pods.Items[i].Status.Phase == corev1.PodRunning {
			pod = &pods.Items[i]
			break
		}
	}
	if pod == nil {
		return nil, fmt.Errorf("no running web pod in namespace %s: is viz installed? (linkerd viz install | kubectl apply -f -; linkerd viz check)", ns)
	}
	pf, err := newPodForwarder(cfg, cs, pod)
	if err != nil {
		return nil, err
	}
	return &dashboardBackend{
		what:  fmt.Sprintf("pod %s/%s", pod.Namespace, pod.Name),
		dial:  pf.dial,
		close: pf.close,
	}, nil
}

// podForwarder forwards the local port through client-go's port-forward
// to the pod, listening on a loopback port of its own that dial connects to.
type podForwarder struct {
	local string
	stop  chan struct{}
	done  chan error
}

func newPodForwarder(cfg *rest.Config, cs *kubernetes.Clientset, pod *corev1.Pod) (*podForwarder, error) {
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("port-forward: %w", err)
	}
	u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, (*url.URL)(u))
	pf := &podForwarder{stop: make(chan struct{}), done: make(chan error, 1)}
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", webPodPort)}, pf.stop, ready, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s: %w", pod.Name, err)
	}
	go func() { pf.done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-pf.done:
		return nil, fmt.Errorf("port-forward to %s: %w", pod.Name, err)
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		pf.close()
		return nil, fmt.Errorf("port-forward to %s: no local port: %v", pod.Name, err)
	}
	pf.local = net.JoinHostPort("127.0.0.1", fmt.Sprint(ports[0].Local))
	return pf, nil
}

func (pf *podForwarder) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", pf.local)
}

func (pf *podForwarder) close() {
	close(pf.stop)
	<-pf.done // the forward ends with the command: its error is not the user's

}
