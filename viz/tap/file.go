package tap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/linkerd-go/linkerd/viz/metricsapi/client"
)

// FilePod is a pod as the local mesh lists them for its tap service (the
// way it lists scrape targets for its Prometheus): a local-mesh workload
// is one pod, its own deployment.
type FilePod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Deployment is the workload the pod belongs to.
	Deployment string `json:"deployment"`
	// Addr is the pod's tap API; Identity its proxy's.
	Addr     string `json:"addr"`
	Identity string `json:"identity"`
	// TapEnabled says whether the pod's proxy serves tap.
	TapEnabled bool `json:"tapEnabled"`
}

// FileResolver resolves resources to pods from a JSON file of FilePods,
// read at every tap (the local mesh rewrites it as pods come and go).
type FileResolver struct {
	Path string
}

// FileKinds are the kinds a FileResolver resolves.
var FileKinds = []string{client.KindNamespace, client.KindDeployment, client.KindPod}

// ReadPodsFile reads a file of FilePods.
func ReadPodsFile(path string) ([]FilePod, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pods to tap: %w", err)
	}
	var pods []FilePod
	if err := json.Unmarshal(b, &pods); err != nil {
		return nil, fmt.Errorf("pods to tap: %s: %w", path, err)
	}
	return pods, nil
}

// Resolve implements PodResolver, with Resolver's errors.
func (r *FileResolver) Resolve(_ context.Context, kind, ns, name string) ([]PodTarget, error) {
	if !tappable(kind) {
		return nil, status.Errorf(codes.InvalidArgument, "cannot tap %s: tap takes a %s", kind, strings.Join(TappableKinds, ", "))
	}
	if kind == client.KindNamespace {
		ns = name
	}
	pods, err := ReadPodsFile(r.Path)
	if errors.Is(err, os.ErrNotExist) {
		pods, err = nil, nil
	}
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	var targets []PodTarget
	var notEnabled []string
	nsExists := false
	for _, p := range pods {
		if p.Namespace != ns {
			continue
		}
		nsExists = true
		if (kind == client.KindDeployment && p.Deployment != name) || (kind == client.KindPod && p.Name != name) ||
			(kind != client.KindNamespace && kind != client.KindDeployment && kind != client.KindPod) {
			continue
		}
		if !p.TapEnabled {
			notEnabled = append(notEnabled, p.Name)
			continue
		}
		targets = append(targets, PodTarget{Namespace: p.Namespace, Name: p.Name, Addr: p.Addr, Identity: p.Identity})
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].Name < targets[j].Name })
	res := kind + "/" + name
	switch {
	case len(targets) > 0:
		return targets, nil
	case len(notEnabled) > 0:
		sort.Strings(notEnabled)
		return nil, status.Errorf(codes.FailedPrecondition, "no pods to tap for %s: tap not enabled on %s (started before tap was available); restart them (linkerd local down, up)",
			res, strings.Join(notEnabled, ", "))
	case !nsExists:
		return nil, status.Errorf(codes.NotFound, "namespace %s not found", ns)
	case kind == client.KindNamespace:
		return nil, status.Errorf(codes.FailedPrecondition, "no pods to tap for %s: no running pods in namespace %s", res, ns)
	default:
		return nil, status.Errorf(codes.NotFound, "%s %s not found in namespace %s", kind, name, ns)
	}
}

var _ PodResolver = (*FileResolver)(nil)
