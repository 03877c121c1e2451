package injector

import (
	"context"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd/pkg/inject"
	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// valuesSource reads the installation's values from linkerd-config on
// every review (so a `linkerd upgrade` applies to the next pod) and keeps
// the Injector built from them until the ConfigMap changes.
type valuesSource struct {
	client    kubernetes.Interface
	namespace string
	createdBy string

	mu       sync.Mutex
	revision string // resourceVersion the cached injector was built from
	cached   *inject.Injector
}

func (v *valuesSource) injector(ctx context.Context) (*inject.Injector, error) {
	cm, err := v.client.CoreV1().ConfigMaps(v.namespace).Get(ctx, k8s.ConfigMapName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", v.namespace, k8s.ConfigMapName, err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cached != nil && cm.ResourceVersion != "" && cm.ResourceVersion == v.revision {
		return v.cached, nil
	}
	raw, ok := cm.Data[k8s.ConfigValuesKey]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s/%s has no %q key", v.namespace, k8s.ConfigMapName, k8s.ConfigValuesKey)
	}
	stored := inject.Values{}
	if err := yaml.Unmarshal([]byte(raw), &stored); err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: parsing %q: %w", v.namespace, k8s.ConfigMapName, k8s.ConfigValuesKey, err)
	}
	if _, ok := stored["controllerNamespace"]; !ok {
		// linkerd-config lives in the control plane's namespace.
		stored["controllerNamespace"] = v.namespace
	}
	values, err := inject.WithDefaults(stored)
	if err != nil {
		return nil, err
	}
	inj, err := inject.New(values, v.createdBy)
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: %w", v.namespace, k8s.ConfigMapName, err)
	}
	v.revision, v.cached = cm.ResourceVersion, inj
	return inj, nil
}
