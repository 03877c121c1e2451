package injector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/pkg/inject"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// reviewTimeout bounds the API calls one review makes (the API server
// gives a webhook 10 s by default).
const reviewTimeout = 5 * time.Second

// serveReview decodes an AdmissionReview and answers it. Only a request
// that is not an AdmissionReview gets an HTTP error.
func (s *Server) serveReview(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReviewBytes))
	if err != nil {
		http.Error(w, "reading request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		if err == nil {
			err = fmt.Errorf("no request")
		}
		http.Error(w, "invalid AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), reviewTimeout)
	defer cancel()
	resp := s.admitSafely(ctx, review.Request)
	resp.UID = review.Request.UID
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	}
	data, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

// admitSafely is admit that turns a panic into an unchanged admission.
func (s *Server) admitSafely(ctx context.Context, req *admissionv1.AdmissionRequest) (resp *admissionv1.AdmissionResponse) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("proxy injector panic; admitting the pod unchanged", "panic", p, "stack", string(debug.Stack()))
			s.metrics.response(req.Namespace, "", "", "error")
			resp = unchanged(fmt.Sprintf("linkerd proxy injector failed (internal error); pod admitted without the proxy: %v", p))
		}
	}()
	return s.admit(ctx, req)
}

// unchanged admits the object as it is, with an optional warning.
func unchanged(warning string) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{Allowed: true}
	if warning != "" {
		resp.Warnings = []string{warning}
	}
	return resp
}

var podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

// admit decides one request. Anything but the creation of a pod passes.
func (s *Server) admit(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Resource != podResource || req.SubResource != "" || req.Operation != admissionv1.Create {
		return unchanged("")
	}
	ns := req.Namespace
	dryRun := req.DryRun != nil && *req.DryRun
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return s.failed(dryRun, ns, nil, nil, fmt.Errorf("decoding the pod: %w", err))
	}
	owner := k8s.PodOwner(&pod)
	w := &inject.Workload{Kind: owner.Kind, Name: owner.Name, Namespace: ns, Meta: &pod.ObjectMeta, Spec: &pod.Spec}
	if w.Kind == "" {
		w.Kind, w.Name = "pod", podName(&pod)
	}
	s.metrics.request(ns, w.Kind)
	log := s.log.With("namespace", ns, "workload", w.String())
	// A dry run must have no side effects (the webhook declares none):
	// no events then.
	record := s.events.record
	if dryRun {
		record = func(corev1.ObjectReference, string, string, string) {}
	}

	namespace, err := s.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return s.failed(dryRun, ns, &pod, nil, fmt.Errorf("reading namespace %s: %w", ns, err))
	}
	injector, err := s.values.injector(ctx)
	if err != nil {
		return s.failed(dryRun, ns, &pod, namespace, err)
	}
	res, err := injector.Inject(w, namespace.Annotations, inject.Options{RequireAnnotation: true})
	if err != nil {
		return s.failed(dryRun, ns, &pod, namespace, err)
	}
	if res.Skip != nil {
		s.metrics.response(ns, w.Kind, string(res.Skip.Reason), "skipped")
		if res.Skip.Reason != inject.InjectEnableAnnotationAbsent {
			log.Info("proxy injection skipped", "reason", res.Skip.Reason, "detail", res.Skip.Message)
			record(involvedObject(&pod, ns, namespace), corev1.EventTypeNormal, "InjectionSkipped",
				"Linkerd sidecar proxy injection skipped: "+res.Skip.Message)
		}
		return unchanged("")
	}
	patch, err := json.Marshal(res.Patch)
	if err != nil {
		return s.failed(dryRun, ns, &pod, namespace, fmt.Errorf("encoding the patch: %w", err))
	}
	msg := "Linkerd sidecar proxy injected"
	for _, warning := range res.Warnings {
		log.Warn("invalid proxy configuration annotation", "detail", warning)
		msg += "; " + warning
	}
	log.Info("proxy injected")
	s.metrics.response(ns, w.Kind, "", "injected")
	record(involvedObject(&pod, ns, namespace), corev1.EventTypeNormal, "Injected", msg)
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, PatchType: &pt, Patch: patch}
}

// failed admits the pod unchanged after an error of the injector, and
// says why in a warning, the log and (unless dry-running) an event.
func (s *Server) failed(dryRun bool, ns string, pod *corev1.Pod, namespace *corev1.Namespace, err error) *admissionv1.AdmissionResponse {
	s.log.Error("proxy injection failed; admitting the pod unchanged", "namespace", ns, "error", err)
	s.metrics.response(ns, "", "", "error")
	msg := "Linkerd sidecar proxy not injected: " + err.Error()
	if pod != nil && !dryRun {
		if obj := involvedObject(pod, ns, namespace); obj.Name != "" {
			s.events.record(obj, corev1.EventTypeWarning, "InjectionFailed", msg)
		}
	}
	return unchanged(msg)
}

// podName names a pod being created: its name, or its generateName prefix.
func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName
}

// involvedObject is what an event about the pod is attached to: the pod's
// controller (e.g. its ReplicaSet), or its namespace for a bare pod (the
// pod does not exist yet). ns is the request's namespace.
func involvedObject(pod *corev1.Pod, ns string, namespace *corev1.Namespace) corev1.ObjectReference {
	if ref := metav1.GetControllerOf(pod); ref != nil {
		return corev1.ObjectReference{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, UID: ref.UID, Namespace: ns}
	}
	if len(pod.OwnerReferences) > 0 {
		ref := pod.OwnerReferences[0]
		return corev1.ObjectReference{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, UID: ref.UID, Namespace: ns}
	}
	if namespace == nil {
		return corev1.ObjectReference{}
	}
	return corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: namespace.Name, UID: namespace.UID}
}
