package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	spv1alpha2 "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
	"github.com/linkerd-go/linkerd/pkg/apis/split"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Decoded is the result of DecodeObjects.
type Decoded struct {
	// Objects are the Services, EndpointSlices and Pods, in document order,
	// with an empty namespace set to "default".
	Objects []metav1.Object
	// Ignored counts documents of other kinds (Deployments, ConfigMaps, ...).
	Ignored int
}

// DecodeObjects parses a stream of Kubernetes manifests: YAML documents
// separated by "---", or JSON objects, including v1 Lists. Services
// (v1), EndpointSlices (discovery.k8s.io/v1) and Pods (v1) are returned;
// other kinds are counted as ignored. Any malformed document, or an object
// of a known kind without a name, fails the whole stream, so that a
// half-written file is not mistaken for a smaller one.
func DecodeObjects(data []byte) (Decoded, error) {
	var out Decoded
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for doc := 1; ; doc++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return Decoded{}, fmt.Errorf("document %d: %w", doc, err)
		}
		if err := decodeOne(raw, &out); err != nil {
			return Decoded{}, fmt.Errorf("document %d: %w", doc, err)
		}
	}
}

func decodeOne(raw json.RawMessage, out *Decoded) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil // empty document
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return fmt.Errorf("reading apiVersion and kind: %w", err)
	}
	if tm.Kind == "" {
		return errors.New("object has no kind")
	}
	if tm.APIVersion == "" {
		return fmt.Errorf("%s has no apiVersion", tm.Kind)
	}
	var obj metav1.Object
	switch gk := tm.APIVersion + "/" + tm.Kind; gk {
	case "v1/Service":
		obj = &corev1.Service{}
	case "v1/Pod":
		obj = &corev1.Pod{}
	case "discovery.k8s.io/v1/EndpointSlice":
		obj = &discoveryv1.EndpointSlice{}
	case "linkerd.io/v1alpha2/ServiceProfile", "linkerd.io/v1alpha1/ServiceProfile":
		obj = &spv1alpha2.ServiceProfile{}
	case "split.smi-spec.io/v1alpha1/TrafficSplit", "split.smi-spec.io/v1alpha2/TrafficSplit":
		obj = &split.TrafficSplit{}
	case "policy.linkerd.io/v1alpha1/HTTPRoute", "policy.linkerd.io/v1beta1/HTTPRoute", "policy.linkerd.io/v1beta2/HTTPRoute",
		"policy.linkerd.io/v1beta3/HTTPRoute", "gateway.networking.k8s.io/v1beta1/HTTPRoute", "gateway.networking.k8s.io/v1/HTTPRoute":
		obj = &policy.HTTPRoute{}
	case "v1/List":
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("kind List: %w", err)
		}
		for i, item := range list.Items {
			if err := decodeOne(item, out); err != nil {
				return fmt.Errorf("item %d of List: %w", i, err)
			}
		}
		return nil
	default:
		out.Ignored++
		return nil
	}
	if err := json.Unmarshal(raw, obj); err != nil {
		return fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if obj.GetName() == "" {
		return fmt.Errorf("%s without metadata.name", tm.Kind)
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace(metav1.NamespaceDefault)
	}
	out.Objects = append(out.Objects, obj)
	return nil
}

// kindOf returns the Kind of a decoded object.
func kindOf(obj metav1.Object) Kind {
	switch o := obj.(type) {
	case *corev1.Service:
		return KindService
	case *discoveryv1.EndpointSlice:
		return KindEndpointSlice
	case *corev1.Pod:
		return KindPod
	case *spv1alpha2.ServiceProfile:
		return KindServiceProfile
	case *split.TrafficSplit:
		return KindTrafficSplit
	case *policy.HTTPRoute:
		return httpRouteKind(o)
	}
	return ""
}
