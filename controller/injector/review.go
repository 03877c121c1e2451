package injector

import (
	"context"
	"encoding/json"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd/controller/webhook"
	"github.com/linkerd-go/linkerd/pkg/inject"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// panicked answers a review whose admission panicked: the pod is admitted
// unchanged with a warning, as after any other failure of ours
// (webhook.Handler logs the panic).
func (s *Server) panicked(req *admissionv1.AdmissionRequest, p any) *admissionv1.AdmissionResponse {
	s.metrics.response(req.Namespace, "", "", "error")
	return webhook.Allowed(fmt.Sprintf("linkerd proxy injector failed (internal error); pod admitted without the proxy: %v", p))
}

var podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

// admit decides one request. Anything but the creation of a pod passes.
func (s *Server) admit(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Resource != podResource || req.SubResource != "" || req.Operation != admissionv1.Create {
		return webhook.Allowed()
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
		return webhook.Allowed()
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
	return webhook.Allowed(msg)
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
