package v1alpha2

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"

	"github.com/linkerd-go/linkerd/pkg/k8s"
)

// FieldError is a problem with one field of a ServiceProfile.
type FieldError struct {
	// Path names the field: "spec.routes[1].condition.pathRegex".
	Path    string
	Message string
}

func (e FieldError) Error() string { return e.Path + ": " + e.Message }

// InvalidError lists the problems of a ServiceProfile, in document order.
type InvalidError struct {
	Errors []FieldError
}

func (e *InvalidError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "; ")
}

// errorList collects FieldErrors.
type errorList []FieldError

func (l *errorList) add(p *field.Path, format string, args ...any) {
	*l = append(*l, FieldError{Path: p.String(), Message: fmt.Sprintf(format, args...)})
}

func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return &InvalidError{Errors: l}
}

// Decode decodes a ServiceProfile from JSON, strictly: an unknown or
// duplicate field, a value of the wrong type or a weight that is not a
// quantity is an *InvalidError naming the field. Decode does not
// Validate.
func Decode(data []byte) (*ServiceProfile, error) {
	// A bad quantity fails decoding without saying where: look first.
	if errs := checkWeights(data); len(errs) > 0 {
		return nil, errs.err()
	}
	sp := &ServiceProfile{}
	strict, err := sigsjson.UnmarshalStrict(data, sp)
	if err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return nil, &InvalidError{Errors: []FieldError{{Path: typeErr.Field, Message: fmt.Sprintf("must be %s, not %s", jsonType(typeErr.Type.Kind().String()), typeErr.Value)}}}
		}
		return nil, fmt.Errorf("decoding the ServiceProfile: %w", err)
	}
	var errs errorList
	for _, e := range strict {
		var fe sigsjson.FieldError
		if errors.As(e, &fe) {
			msg := "unknown field"
			if strings.HasPrefix(e.Error(), "duplicate field") {
				msg = "duplicate field"
			}
			errs = append(errs, FieldError{Path: fe.FieldPath(), Message: msg})
			continue
		}
		errs = append(errs, FieldError{Path: "(root)", Message: e.Error()})
	}
	if sp.APIVersion != "" && sp.APIVersion != SchemeGroupVersion.String() && sp.APIVersion != V1alpha1 {
		errs.add(field.NewPath("apiVersion"), "must be %s (or %s), not %q", SchemeGroupVersion, V1alpha1, sp.APIVersion)
	}
	if sp.Kind != "" && sp.Kind != Kind {
		errs.add(field.NewPath("kind"), "must be %s, not %q", Kind, sp.Kind)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return sp, nil
}

// jsonType names a Go kind as the JSON type a user writes.
func jsonType(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "bool":
		return "a boolean (true or false)"
	case kind == "string":
		return "a string"
	case kind == "slice":
		return "a list"
	case kind == "struct", kind == "ptr", kind == "map":
		return "an object"
	}
	return "a " + kind
}

// checkWeights finds the dstOverrides weights that are not quantities.
func checkWeights(data []byte) errorList {
	var loose struct {
		Spec struct {
			DstOverrides []struct {
				Weight json.RawMessage `json:"weight"`
			} `json:"dstOverrides"`
		} `json:"spec"`
	}
	if json.Unmarshal(data, &loose) != nil {
		return nil // the strict decoding says what is wrong
	}
	var errs errorList
	for i, d := range loose.Spec.DstOverrides {
		p := field.NewPath("spec", "dstOverrides").Index(i).Child("weight")
		raw := strings.TrimSpace(string(d.Weight))
		if raw == "" || raw == "null" {
			continue // required: Validate says so
		}
		if s, err := strconv.Unquote(raw); err == nil {
			raw = s
		}
		if _, err := resource.ParseQuantity(raw); err != nil {
			errs.add(p, "%q is not a quantity (e.g. 1, 500m, 0.5)", raw)
		}
	}
	return errs
}

// maxConditionDepth bounds the nesting of all/any/not.
const maxConditionDepth = 32

// Validate checks a decoded ServiceProfile; the error is an *InvalidError
// listing every problem with the path of its field.
func Validate(sp *ServiceProfile) error {
	var errs errorList
	validateName(&errs, sp.Name)
	spec := field.NewPath("spec")
	for i, r := range sp.Spec.Routes {
		validateRoute(&errs, spec.Child("routes").Index(i), r)
	}
	if rb := sp.Spec.RetryBudget; rb != nil {
		p := spec.Child("retryBudget")
		if rb.RetryRatio < 0 {
			errs.add(p.Child("retryRatio"), "must not be negative, got %v", rb.RetryRatio)
		}
		if rb.MinRetriesPerSecond < 0 {
			errs.add(p.Child("minRetriesPerSecond"), "must not be negative, got %d", rb.MinRetriesPerSecond)
		}
		if rb.TTL == "" {
			errs.add(p.Child("ttl"), "required (a duration such as 10s)")
		} else if d, err := time.ParseDuration(rb.TTL); err != nil {
			errs.add(p.Child("ttl"), "%v", err)
		} else if d <= 0 {
			errs.add(p.Child("ttl"), "must be positive, got %s", rb.TTL)
		}
	}
	for i, d := range sp.Spec.DstOverrides {
		p := spec.Child("dstOverrides").Index(i)
		if d == nil {
			errs.add(p, "must not be null")
			continue
		}
		validateAuthority(&errs, p.Child("authority"), d.Authority)
		if d.Weight.Sign() < 0 {
			errs.add(p.Child("weight"), "must not be negative, got %s", d.Weight.String())
		}
	}
	for i, s := range sp.Spec.OpaquePorts {
		if _, err := k8s.ParsePortRange(s); err != nil {
			errs.add(spec.Child("opaquePorts").Index(i), "%v", err)
		}
	}
	validateFaults(&errs, sp)
	return errs.err()
}

// validateName checks that the profile is named after a host: a service's
// FQDN (<service>.<namespace>.svc.<cluster domain>) or an external name.
func validateName(errs *errorList, name string) {
	p := field.NewPath("metadata", "name")
	if name == "" {
		errs.add(p, "required: the fully-qualified name of the service (e.g. web.emojivoto.svc.cluster.local)")
		return
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		errs.add(p, "%q is not a host name: %s", name, strings.Join(msgs, "; "))
		return
	}
	labels := strings.Split(name, ".")
	switch {
	case len(labels) == 1:
		errs.add(p, "%q is not fully qualified: name the profile <service>.<namespace>.svc.<cluster domain> (e.g. %s.default.svc.cluster.local), or after an external host name", name, name)
	case len(labels) == 3 && labels[2] == "svc":
		errs.add(p, "%q lacks the cluster domain: name the profile %s.<cluster domain> (e.g. %s.cluster.local)", name, name, name)
	}
}

// validateAuthority checks a host name or IP with an optional port.
func validateAuthority(errs *errorList, p *field.Path, authority string) {
	if authority == "" {
		errs.add(p, "required: a host name with an optional port (e.g. web-v2.emojivoto.svc.cluster.local:80)")
		return
	}
	host, port := authority, ""
	if h, pt, err := net.SplitHostPort(authority); err == nil {
		host, port = h, pt
	} else if strings.Count(authority, ":") == 1 || strings.HasPrefix(authority, "[") {
		errs.add(p, "%q: %v", authority, err)
		return
	}
	if port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			errs.add(p, "%q: invalid port %q: want a number between 1 and 65535", authority, port)
		}
	}
	if net.ParseIP(host) == nil {
		if msgs := validation.IsDNS1123Subdomain(host); len(msgs) > 0 {
			errs.add(p, "%q: %q is not a host name: %s", authority, host, strings.Join(msgs, "; "))
		}
	}
}

func validateRoute(errs *errorList, p *field.Path, r *RouteSpec) {
	if r == nil {
		errs.add(p, "must not be null")
		return
	}
	if strings.TrimSpace(r.Name) == "" {
		errs.add(p.Child("name"), "required")
	}
	if r.Condition == nil {
		errs.add(p.Child("condition"), "required: which requests take the route (e.g. {method: GET, pathRegex: /api/.*})")
	} else {
		validateRequestMatch(errs, p.Child("condition"), r.Condition, 0)
	}
	for i, rc := range r.ResponseClasses {
		rp := p.Child("responseClasses").Index(i)
		switch {
		case rc == nil:
			errs.add(rp, "must not be null")
		case rc.Condition == nil:
			errs.add(rp.Child("condition"), "required: which responses the class matches (e.g. {status: {min: 500, max: 599}})")
		default:
			validateResponseMatch(errs, rp.Child("condition"), rc.Condition, 0)
		}
	}
	if r.Timeout != "" {
		if d, err := time.ParseDuration(r.Timeout); err != nil {
			errs.add(p.Child("timeout"), "%v", err)
		} else if d < 0 {
			errs.add(p.Child("timeout"), "must not be negative, got %s", r.Timeout)
		}
	}
}

// checkCondition reports whether the condition m at depth can be validated
// further, else records why not: it is null or nested too deep.
func checkCondition[M any](errs *errorList, p *field.Path, m *M, depth int) bool {
	if m == nil {
		errs.add(p, "must not be null")
		return false
	}
	if depth > maxConditionDepth {
		errs.add(p, "conditions nested more than %d deep", maxConditionDepth)
		return false
	}
	return true
}

func validateRequestMatch(errs *errorList, p *field.Path, m *RequestMatch, depth int) {
	if !checkCondition(errs, p, m, depth) {
		return
	}
	if m.All == nil && m.Any == nil && m.Not == nil && m.PathRegex == "" && m.Method == "" {
		errs.add(p, "empty condition: set at least one of method, pathRegex, all, any, not")
		return
	}
	if m.Method != "" {
		validateMethod(errs, p.Child("method"), m.Method)
	}
	if m.PathRegex != "" {
		if _, err := regexp.Compile(m.PathRegex); err != nil {
			errs.add(p.Child("pathRegex"), "%v", err)
		}
	}
	validateList(errs, p.Child("all"), m.All, depth, validateRequestMatch)
	validateList(errs, p.Child("any"), m.Any, depth, validateRequestMatch)
	if m.Not != nil {
		validateRequestMatch(errs, p.Child("not"), m.Not, depth+1)
	}
}

func validateResponseMatch(errs *errorList, p *field.Path, m *ResponseMatch, depth int) {
	if !checkCondition(errs, p, m, depth) {
		return
	}
	if m.All == nil && m.Any == nil && m.Not == nil && m.Status == nil {
		errs.add(p, "empty condition: set at least one of status, all, any, not")
		return
	}
	if r := m.Status; r != nil {
		sp := p.Child("status")
		ok := true
		if r.Min == 0 && r.Max == 0 {
			errs.add(sp, "set min, max or both (HTTP status codes between %d and %d)", MinStatus, MaxStatus)
			ok = false
		}
		for _, b := range []struct {
			name string
			v    int32
		}{{"min", r.Min}, {"max", r.Max}} {
			if b.v != 0 && (b.v < MinStatus || b.v > MaxStatus) {
				errs.add(sp.Child(b.name), "%d is not an HTTP status code (between %d and %d)", b.v, MinStatus, MaxStatus)
				ok = false
			}
		}
		if ok && r.Min != 0 && r.Max != 0 && r.Min > r.Max {
			errs.add(sp, "min %d is above max %d", r.Min, r.Max)
		}
	}
	validateList(errs, p.Child("all"), m.All, depth, validateResponseMatch)
	validateList(errs, p.Child("any"), m.Any, depth, validateResponseMatch)
	if m.Not != nil {
		validateResponseMatch(errs, p.Child("not"), m.Not, depth+1)
	}
}

// validateList checks the conditions of an all or any list: present
// lists are not empty.
func validateList[T any](errs *errorList, p *field.Path, list []*T, depth int, validate func(*errorList, *field.Path, *T, int)) {
	if list == nil {
		return
	}
	if len(list) == 0 {
		errs.add(p, "empty list: give at least one condition")
		return
	}
	for i, c := range list {
		validate(errs, p.Index(i), c, depth+1)
	}
}

// validateMethod checks an HTTP method: a token, and the standard methods
// in upper case (methods are case-sensitive: "get" never matches).
func validateMethod(errs *errorList, p *field.Path, method string) {
	for _, c := range method {
		if !isTokenChar(c) {
			errs.add(p, "%q is not an HTTP method", method)
			return
		}
	}
	upper := strings.ToUpper(method)
	if upper != method && standardMethods[upper] {
		errs.add(p, "%q never matches: HTTP methods are case-sensitive, write %q", method, upper)
	}
}

var standardMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "CONNECT": true, "OPTIONS": true, "TRACE": true,
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110).
func isTokenChar(c rune) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.ContainsRune("!#$%&'*+-.^_`|~", c)
}
