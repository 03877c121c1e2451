package k8s

import (
	"fmt"
	"slices"
)

// BalancerAlgorithmAnnotation on a Service chooses how client proxies
// balance requests over its endpoints (ours, not Linkerd's).
const BalancerAlgorithmAnnotation = "balancer.linkerd-go.io/algorithm"

// BalancerAlgorithms are the values BalancerAlgorithmAnnotation accepts;
// the first is the default.
var BalancerAlgorithms = []string{"peak-ewma", "least-request", "round-robin"}

// ValidateBalancerAlgorithm checks a BalancerAlgorithmAnnotation value.
func ValidateBalancerAlgorithm(v string) error {
	if !slices.Contains(BalancerAlgorithms, v) {
		return fmt.Errorf("%s: unknown algorithm %q (want one of %v)", BalancerAlgorithmAnnotation, v, BalancerAlgorithms)
	}
	return nil
}
