// Package tapinjector is viz's tap-injector: a mutating admission webhook
// that enables tap on the meshed pods created once viz is installed, by
// giving their proxy the tap service's identity (LINKERD2_PROXY_TAP_SVC_NAME,
// the only client its tap API serves) and annotating them
// viz.linkerd.io/tap-enabled, as Linkerd's does. A pod or namespace
// annotated viz.linkerd.io/disable-tap: "true" is left alone.
package tapinjector

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd/controller/webhook"
	"github.com/linkerd-go/linkerd/pkg/inject"
	"github.com/linkerd-go/linkerd/pkg/k8s"
	"github.com/linkerd-go/linkerd/pkg/proxyenv"
	"github.com/linkerd-go/linkerd/viz/tap"
)

// Path is where the webhook configuration sends reviews.
const Path = "/"

// Server is the tap-injector.
type Server struct {
	// TapIdentity is the tap service's identity, given to the proxies.
	TapIdentity string
	// Client reads the pods' namespaces (their disable-tap annotation).
	Client kubernetes.Interface
	Log    *slog.Logger
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// Handler serves AdmissionReviews on Path. Tap is never worth blocking a
// pod: a panic admits the pod unchanged, with a warning.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+Path+"{$}", &webhook.Handler{Admit: s.Admit, Log: s.log(), Panic: func(_ *admissionv1.AdmissionRequest, p any) *admissionv1.AdmissionResponse {
		return webhook.Allowed(fmt.Sprintf("linkerd tap injector failed (internal error); pod admitted without tap: %v", p))
	}})
	return mux
}

// Serve serves the webhook over TLS on lis until ctx is done.
func (s *Server) Serve(ctx context.Context, lis net.Listener, tlsConfig *tls.Config) error {
	return webhook.Serve(ctx, "tap-injector", lis, s.Handler(), tlsConfig, s.log())
}

var podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

// Admit decides one request: a meshed pod being created gets tap enabled
// (a JSON patch); anything else passes unchanged.
func (s *Server) Admit(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Resource != podResource || req.SubResource != "" || req.Operation != admissionv1.Create {
		return webhook.Allowed()
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return webhook.Allowed(fmt.Sprintf("linkerd tap injector: decoding the pod: %v; admitted without tap", err))
	}
	var nsAnnotations map[string]string
	if s.Client != nil && req.Namespace != "" {
		ns, err := s.Client.CoreV1().Namespaces().Get(ctx, req.Namespace, metav1.GetOptions{})
		if err != nil {
			s.log().Warn("reading the pod's namespace", "namespace", req.Namespace, "error", err)
		} else {
			nsAnnotations = ns.Annotations
		}
	}
	patch := Patch(&pod, nsAnnotations, s.TapIdentity)
	if len(patch) == 0 {
		return webhook.Allowed()
	}
	b, err := json.Marshal(patch)
	if err != nil {
		return webhook.Allowed(fmt.Sprintf("linkerd tap injector: %v; admitted without tap", err))
	}
	s.log().Debug("tap enabled", "namespace", req.Namespace, "pod", pod.Name+pod.GenerateName)
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, PatchType: &pt, Patch: b}
}

// Patch returns the operations enabling tap on pod (nil when the pod has no
// proxy, already has tap, or disables it, itself or by its namespace's
// annotations nsAnnotations).
func Patch(pod *corev1.Pod, nsAnnotations map[string]string, tapIdentity string) inject.Patch {
	if pod.Annotations[tap.DisableTapAnnotation] == "true" || nsAnnotations[tap.DisableTapAnnotation] == "true" || tap.TapEnabled(pod) {
		return nil
	}
	path := ""
	var proxy *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == k8s.ProxyContainerName {
			path, proxy = fmt.Sprintf("/spec/containers/%d", i), &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers { // a native sidecar
		if pod.Spec.InitContainers[i].Name == k8s.ProxyContainerName {
			path, proxy = fmt.Sprintf("/spec/initContainers/%d", i), &pod.Spec.InitContainers[i]
		}
	}
	if proxy == nil {
		return nil
	}
	env := corev1.EnvVar{Name: proxyenv.TapSvcName, Value: tapIdentity}
	var ops inject.Patch
	if proxy.Env == nil {
		ops = append(ops, inject.Operation{Op: "add", Path: path + "/env", Value: []corev1.EnvVar{env}})
	} else {
		ops = append(ops, inject.Operation{Op: "add", Path: path + "/env/-", Value: env})
	}
	if pod.Annotations == nil {
		ops = append(ops, inject.Operation{Op: "add", Path: "/metadata/annotations", Value: map[string]string{tap.TapEnabledAnnotation: "true"}})
	} else {
		ops = append(ops, inject.Operation{Op: "add", Path: "/metadata/annotations/" + escape(tap.TapEnabledAnnotation), Value: "true"})
	}
	return ops
}

// escape escapes a JSON pointer token.
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
