package v1alpha2

import (
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsyaml "sigs.k8s.io/yaml"
)

// FaultsAnnotation holds a ServiceProfile's fault injection (our extension,
// applied by the client proxies): a YAML or JSON list of RouteFault.
const FaultsAnnotation = "faults.linkerd-go.io/v1"

// RouteFault injects faults into the requests of one route.
type RouteFault struct {
	// Route is the name of one of the profile's routes.
	Route string      `json:"route"`
	Abort *FaultAbort `json:"abort,omitempty"`
	Delay *FaultDelay `json:"delay,omitempty"`
}

// FaultAbort answers Percent of the requests with HTTPStatus.
type FaultAbort struct {
	Percent    float64 `json:"percent"`
	HTTPStatus int32   `json:"httpStatus"`
}

// FaultDelay delays Percent of the requests by Duration (a Go duration).
type FaultDelay struct {
	Percent  float64 `json:"percent"`
	Duration string  `json:"duration"`
}

// Faults returns the profile's faults by route name, checked; the error
// names the field.
func Faults(sp *ServiceProfile) (map[string]RouteFault, error) {
	var errs errorList
	out := validateFaults(&errs, sp)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return out, nil
}

func validateFaults(errs *errorList, sp *ServiceProfile) map[string]RouteFault {
	raw, ok := sp.Annotations[FaultsAnnotation]
	if !ok {
		return nil
	}
	p := field.NewPath("metadata", "annotations").Key(FaultsAnnotation)
	var list []RouteFault
	if err := sigsyaml.UnmarshalStrict([]byte(raw), &list); err != nil {
		errs.add(p, "not a list of {route, abort: {percent, httpStatus}, delay: {percent, duration}}: %v", err)
		return nil
	}
	routes := map[string]bool{}
	for _, r := range sp.Spec.Routes {
		if r != nil {
			routes[r.Name] = true
		}
	}
	out := map[string]RouteFault{}
	for i, f := range list {
		fp := p.Index(i)
		switch {
		case strings.TrimSpace(f.Route) == "":
			errs.add(fp.Child("route"), "required: the name of a route of the profile")
		case !routes[f.Route]:
			errs.add(fp.Child("route"), "%q is not a route of the profile", f.Route)
		case out[f.Route].Route != "":
			errs.add(fp.Child("route"), "%q has two entries", f.Route)
		}
		if f.Abort == nil && f.Delay == nil {
			errs.add(fp, "set abort, delay or both")
		}
		if a := f.Abort; a != nil {
			checkPercent(errs, fp.Child("abort", "percent"), a.Percent)
			if a.HTTPStatus < MinStatus || a.HTTPStatus > MaxStatus {
				errs.add(fp.Child("abort", "httpStatus"), "%d is not an HTTP status code (between %d and %d)", a.HTTPStatus, MinStatus, MaxStatus)
			}
		}
		if d := f.Delay; d != nil {
			checkPercent(errs, fp.Child("delay", "percent"), d.Percent)
			if dur, err := time.ParseDuration(d.Duration); err != nil {
				errs.add(fp.Child("delay", "duration"), "%v", err)
			} else if dur < 0 {
				errs.add(fp.Child("delay", "duration"), "must not be negative, got %s", d.Duration)
			}
		}
		out[f.Route] = f
	}
	return out
}

func checkPercent(errs *errorList, p *field.Path, v float64) {
	if v < 0 || v > 100 {
		errs.add(p, "must be between 0 and 100, got %v", v)
	}
}
