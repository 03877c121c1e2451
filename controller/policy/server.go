package policy

import (
	"encoding/json"
	"log/slog"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/linkerd-go/linkerd/controller/store"
	"github.com/linkerd-go/linkerd/pkg/inboundpolicy"
	policyv1 "github.com/linkerd-go/linkerd/proto/policy/v1"
)

// Server serves the InboundPolicy API.
type Server struct {
	policyv1.UnimplementedInboundPolicyServer
	Index *Index
	// Pods finds the watching proxy's pod (labels, annotations, port names).
	Pods   store.Reader
	Config inboundpolicy.Config
	Log    *slog.Logger
}

// Workload is a parsed LINKERD2_PROXY_POLICY_WORKLOAD.
type Workload struct {
	Namespace string `json:"ns"`
	Pod       string `json:"pod"`
}

// ParseWorkload parses {"ns":..,"pod":..} or "ns:pod".
func ParseWorkload(s string) (Workload, bool) {
	var w Workload
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		if json.Unmarshal([]byte(s), &w) != nil {
			return w, false
		}
	} else {
		w.Namespace, w.Pod, _ = strings.Cut(s, ":")
	}
	return w, w.Namespace != "" && w.Pod != ""
}

// Watch implements the API: the current policy now, a new one after each change.
func (s *Server) Watch(req *policyv1.WatchRequest, stream policyv1.InboundPolicy_WatchServer) error {
	w, ok := ParseWorkload(req.GetWorkload())
	if !ok {
		return status.Errorf(codes.InvalidArgument, "workload %q is not {\"ns\":\"<namespace>\",\"pod\":\"<name>\"}", req.GetWorkload())
	}
	ctx := stream.Context()
	var last *policyv1.WorkloadPolicy
	for {
		res, changed := s.Index.Snapshot()
		msg := inboundpolicy.ToProto(inboundpolicy.Resolve(s.workload(w, res), res, s.Config))
		if last == nil || !proto.Equal(last, msg) {
			if err := stream.Send(msg); err != nil {
				return err
			}
			last = msg
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// workload describes w's pod as policy needs it; a pod not (yet) known has
// no labels: only the defaults apply.
func (s *Server) workload(w Workload, res *inboundpolicy.Resources) inboundpolicy.Workload {
	out := inboundpolicy.Workload{Namespace: w.Namespace, Name: w.Pod, NamespaceAnnotations: res.NamespaceAnnotations[w.Namespace]}
	pod, ok := s.Pods.Pod(w.Namespace, w.Pod)
	if !ok {
		return out
	}
	out.Labels, out.Annotations = pod.Labels, pod.Annotations
	out.PortNames = map[string]uint16{}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name != "" && p.ContainerPort > 0 && p.ContainerPort < 65536 {
				out.PortNames[p.Name] = uint16(p.ContainerPort)
			}
		}
	}
	return out
}

// OnStoreEvent wakes the watchers when a pod changed (register it with the store).
func (s *Server) OnStoreEvent(e store.Event) {
	if e.Kind == store.KindPod {
		s.Index.Notify()
	}
}

// Ready reports whether the initial resources are loaded.
func (s *Server) Ready() bool { return s.Index.Synced() }
