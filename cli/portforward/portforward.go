// Package portforward forwards a local port to a pod's port through the
// Kubernetes API server, as `kubectl port-forward` does: how the CLI reaches
// the viz extension's components (the metrics API, the dashboard) in a
// cluster.
package portforward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
)

// readyTimeout bounds the wait for the local listener.
const readyTimeout = 30 * time.Second

// Forward is a local listener on 127.0.0.1 whose connections go to a
// pod's port. Close stops it.
type Forward struct {
	// Addr is the local address, 127.0.0.1:PORT.
	Addr string
	// Pod is the pod forwarded to.
	Pod    string
	cancel context.CancelFunc
	done   chan error
}

// ToPod forwards localPort on 127.0.0.1 (0: a free one) to podPort of the
// pod ns/pod, and returns once the local port listens.
func ToPod(ctx context.Context, cfg *rest.Config, ns, pod string, localPort, podPort int) (*Forward, error) {
	// The forwarded connections live as long as the Forward: no request
	// timeout.
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 0
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	u := kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("portforward").URL()
	// As kubectl: WebSockets first, SPDY when the server cannot upgrade.
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s/%s: %w", ns, pod, err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	ws, err := portforward.NewSPDYOverWebsocketDialer(u, cfg)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s/%s: %w", ns, pod, err)
	}
	dialer = portforward.NewFallbackDialer(ws, dialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})

	fwdCtx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddressesWithContext(fwdCtx, dialer, []string{"127.0.0.1"},
		[]string{fmt.Sprintf("%d:%d", localPort, podPort)}, ready, io.Discard, io.Discard)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("port-forward to %s/%s: %w", ns, pod, err)
	}
	f := &Forward{Pod: pod, cancel: cancel, done: make(chan error, 1)}
	go func() { f.done <- pf.ForwardPorts() }()

	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-ready:
	case err := <-f.done:
		cancel()
		if err == nil {
			err = errors.New("stopped")
		}
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", ns, pod, podPort, err)
	case <-ctx.Done():
		f.Close()
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", ns, pod, podPort, ctx.Err())
	case <-timer.C:
		f.Close()
		return nil, fmt.Errorf("port-forward to %s/%s:%d: not ready after %v", ns, pod, podPort, readyTimeout)
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		f.Close()
		return nil, fmt.Errorf("port-forward to %s/%s:%d: no local port: %v", ns, pod, podPort, err)
	}
	f.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local)))
	return f, nil
}

// ToComponent forwards to podPort of a running pod of ns matching the
// label selector, a ready one if there is.
func ToComponent(ctx context.Context, cfg *rest.Config, ns, selector string, localPort, podPort int) (*Forward, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	pod, err := pick(ctx, kube, ns, selector)
	if err != nil {
		return nil, err
	}
	return ToPod(ctx, cfg, ns, pod, localPort, podPort)
}

// pick returns the name of a running pod of ns matching selector,
// preferring ready ones.
func pick(ctx context.Context, kube kubernetes.Interface, ns, selector string) (string, error) {
	list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "", fmt.Errorf("listing pods %s in %s: %w", selector, ns, err)
	}
	var running []corev1.Pod
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running = append(running, p)
		}
	}
	if len(running) == 0 {
		return "", fmt.Errorf("no running pod %s in namespace %s", selector, ns)
	}
	slices.SortStableFunc(running, func(a, b corev1.Pod) int {
		if ra, rb := ready(&a), ready(&b); ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return running[0].Name, nil
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Close stops forwarding and waits until the listener is closed.
func (f *Forward) Close() {
	f.cancel()
	err := <-f.done
	f.done <- err // a second Close returns at once
}
