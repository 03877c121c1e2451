package localmesh

import (
	"fmt"

	"github.com/linkerd-go/linkerd/pkg/k8s"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// checkServiceAnnotations refuses a Service whose balancer annotation names
// no algorithm (destination would ignore it, silently).
func checkServiceAnnotations(objs []metav1.Object) error {
	for _, obj := range objs {
		svc, ok := obj.(*corev1.Service)
		if !ok {
			continue
		}
		if v, ok := svc.Annotations[k8s.BalancerAlgorithmAnnotation]; ok {
			if err := k8s.ValidateBalancerAlgorithm(v); err != nil {
				return fmt.Errorf("service %s/%s: %w", svc.Namespace, svc.Name, err)
			}
		}
	}
	return nil
}
