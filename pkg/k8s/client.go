package k8s

import (
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// NewClientset returns a Kubernetes client from the kubeconfig file, or
// from the in-cluster configuration (service account token) when
// kubeconfig is empty. userAgent identifies the component to the API server.
func NewClientset(kubeconfig, userAgent string) (kubernetes.Interface, error) {
	cfg, err := clientConfig(kubeconfig, userAgent)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cs, nil
}

// NewDynamic returns a dynamic client configured as NewClientset's.
func NewDynamic(kubeconfig, userAgent string) (dynamic.Interface, error) {
	cfg, err := clientConfig(kubeconfig, userAgent)
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	return dc, nil
}

func clientConfig(kubeconfig, userAgent string) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg.UserAgent = userAgent
	return cfg, nil
}
