package split

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Decode strictly decodes one TrafficSplit (YAML or JSON) and validates it:
// unknown fields, another kind or version and invalid values are errors
// naming the field.
func Decode(data []byte) (*TrafficSplit, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, fmt.Errorf("decoding TrafficSplit: %w", err)
	}
	if tm.Kind != Kind {
		return nil, fmt.Errorf("kind: %q is not %s", tm.Kind, Kind)
	}
	group, version, _ := strings.Cut(tm.APIVersion, "/")
	if group != GroupName || !slices.Contains(Versions, version) {
		return nil, fmt.Errorf("apiVersion: %q is not %s/%s", tm.APIVersion, GroupName, strings.Join(Versions, " or "))
	}
	ts := &TrafficSplit{}
	if err := yaml.UnmarshalStrict(data, ts); err != nil {
		return nil, fmt.Errorf("decoding TrafficSplit: %w", err)
	}
	if err := ts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid TrafficSplit %s: %w", ts.Name, err)
	}
	return ts, nil
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// validServiceName accepts a Service name or a host name made of DNS
// labels (the apex may be given as a FQDN, as SMI allows).
func validServiceName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) > 63 || !dnsLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// Validate checks ts, naming the field at fault: the apex and backends are
// Service names, weights are not negative and do not sum to 0.
func (ts *TrafficSplit) Validate() error {
	if ts.Spec.Service == "" {
		return errors.New("spec.service: required")
	}
	if !validServiceName(ts.Spec.Service) {
		return fmt.Errorf("spec.service: %q is not a Service name", ts.Spec.Service)
	}
	if len(ts.Spec.Backends) == 0 {
		return errors.New("spec.backends: at least one backend is required")
	}
	var total int64
	for i, b := range ts.Spec.Backends {
		if b.Service == "" {
			return fmt.Errorf("spec.backends[%d].service: required", i)
		}
		if !validServiceName(b.Service) {
			return fmt.Errorf("spec.backends[%d].service: %q is not a Service name", i, b.Service)
		}
		if b.Weight.Sign() < 0 {
			return fmt.Errorf("spec.backends[%d].weight: %s is negative", i, b.Weight.String())
		}
		total += b.Weight.MilliValue()
	}
	if total == 0 {
		return errors.New("spec.backends: the weights sum to 0: no backend would get traffic")
	}
	return nil
}
