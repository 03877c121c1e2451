package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// GatewayGroupName is the Gateway API's group, whose HTTPRoute has the same
// shape as policy.linkerd.io's.
const GatewayGroupName = "gateway.networking.k8s.io"

// HTTPRouteVersions are the served versions of HTTPRoute in each group
// (policy.linkerd.io stores v1beta3, gateway.networking.k8s.io v1). The
// versions of a group share one schema.
var HTTPRouteVersions = map[string][]string{
	GroupName:        {"v1alpha1", "v1beta1", "v1beta2", "v1beta3"},
	GatewayGroupName: {"v1beta1", "v1"},
}

// The HTTPRoute resources the control plane watches: each group's storage version.
var (
	HTTPRouteGVR        = schema.GroupVersionResource{Group: GroupName, Version: "v1beta3", Resource: "httproutes"}
	GatewayHTTPRouteGVR = schema.GroupVersionResource{Group: GatewayGroupName, Version: "v1", Resource: "httproutes"}
)

// Path match types of an HTTPRoute.
const (
	PathMatchExact             = "Exact"
	PathMatchPathPrefix        = "PathPrefix"
	PathMatchRegularExpression = "RegularExpression"
)

// Header and query parameter match types of an HTTPRoute.
const (
	HeaderMatchExact             = "Exact"
	HeaderMatchRegularExpression = "RegularExpression"
)

// Filter types of an HTTPRoute rule (those of the Gateway API).
const (
	FilterRequestHeaderModifier  = "RequestHeaderModifier"
	FilterResponseHeaderModifier = "ResponseHeaderModifier"
	FilterRequestRedirect        = "RequestRedirect"
	FilterRequestMirror          = "RequestMirror"
	FilterURLRewrite             = "URLRewrite"
	FilterExtensionRef           = "ExtensionRef"
)

// HTTPRoute matches HTTP requests to a parent (a Server for inbound
// authorization, a Service for outbound routing: the GAMMA pattern) and says
// how to filter and where to send them. It is the same type for
// policy.linkerd.io and gateway.networking.k8s.io; TypeMeta tells them apart.
//
// +k8s:deepcopy-gen=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type HTTPRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              HTTPRouteSpec    `json:"spec"`
	Status            *HTTPRouteStatus `json:"status,omitempty"`
}

// HTTPRouteList is a list of HTTPRoutes.
//
// +k8s:deepcopy-gen=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type HTTPRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HTTPRoute `json:"items"`
}

// HTTPRouteSpec is an HTTPRoute's spec.
//
// +k8s:deepcopy-gen=true
type HTTPRouteSpec struct {
	// ParentRefs are the Servers or Services the route attaches to.
	ParentRefs []ParentReference `json:"parentRefs,omitempty"`
	// Hostnames restrict the route to requests for these hosts.
	Hostnames []string `json:"hostnames,omitempty"`
	// Rules match requests and say where they go; the first rule with a
	// matching match wins (the most specific match, as the Gateway API
	// orders them).
	Rules []HTTPRouteRule `json:"rules,omitempty"`
}

// ParentReference names a route's parent. An empty Group is the core group
// (a Service) for kind Service, the route's group otherwise.
//
// +k8s:deepcopy-gen=true
type ParentReference struct {
	Group       string `json:"group,omitempty"`
	Kind        string `json:"kind,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name"`
	SectionName string `json:"sectionName,omitempty"`
	Port        int32  `json:"port,omitempty"`
}

// HTTPRouteRule is one rule of a route.
//
// +k8s:deepcopy-gen=true
type HTTPRouteRule struct {
	// Name is the rule's name (Gateway API v1.2+), used as the route label
	// of its metrics when set.
	Name string `json:"name,omitempty"`
	// Matches select the rule's requests: any one matching is enough; none
	// matches every request (a PathPrefix "/").
	Matches []HTTPRouteMatch `json:"matches,omitempty"`
	// Filters apply to the rule's requests.
	Filters []HTTPRouteFilter `json:"filters,omitempty"`
	// BackendRefs are where the rule's requests go, split by weight; none
	// means the parent Service itself.
	BackendRefs []HTTPBackendRef `json:"backendRefs,omitempty"`
	// Timeouts of the rule's requests.
	Timeouts *HTTPRouteTimeouts `json:"timeouts,omitempty"`
}

// HTTPRouteMatch matches a request when every field it sets matches.
//
// +k8s:deepcopy-gen=true
type HTTPRouteMatch struct {
	Path        *HTTPPathMatch    `json:"path,omitempty"`
	Headers     []HTTPHeaderMatch `json:"headers,omitempty"`
	QueryParams []HTTPHeaderMatch `json:"queryParams,omitempty"`
	Method      string            `json:"method,omitempty"`
}

// HTTPPathMatch matches the request path. An empty Type is PathPrefix, an
// empty Value "/".
//
// +k8s:deepcopy-gen=true
type HTTPPathMatch struct {
	Type  string `json:"type,omitempty"`
	Value string `json:"value,omitempty"`
}

// HTTPHeaderMatch matches a header (or a query parameter) by name and
// value. An empty Type is Exact.
//
// +k8s:deepcopy-gen=true
type HTTPHeaderMatch struct {
	Type  string `json:"type,omitempty"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HTTPRouteFilter changes a request or its response; Type says which of
// the other fields is set.
//
// +k8s:deepcopy-gen=true
type HTTPRouteFilter struct {
	Type                   string                     `json:"type"`
	RequestHeaderModifier  *HTTPHeaderFilter          `json:"requestHeaderModifier,omitempty"`
	ResponseHeaderModifier *HTTPHeaderFilter          `json:"responseHeaderModifier,omitempty"`
	RequestRedirect        *HTTPRequestRedirectFilter `json:"requestRedirect,omitempty"`
	RequestMirror          *HTTPRequestMirrorFilter   `json:"requestMirror,omitempty"`
	URLRewrite             *HTTPURLRewriteFilter      `json:"urlRewrite,omitempty"`
	ExtensionRef           *LocalObjectReference      `json:"extensionRef,omitempty"`
}

// HTTPHeaderFilter sets, adds and removes headers.
//
// +k8s:deepcopy-gen=true
type HTTPHeaderFilter struct {
	Set    []HTTPHeader `json:"set,omitempty"`
	Add    []HTTPHeader `json:"add,omitempty"`
	Remove []string     `json:"remove,omitempty"`
}

// HTTPHeader is a header name and value.
//
// +k8s:deepcopy-gen=true
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HTTPRequestRedirectFilter answers with a redirect.
//
// +k8s:deepcopy-gen=true
type HTTPRequestRedirectFilter struct {
	Scheme     string            `json:"scheme,omitempty"`
	Hostname   string            `json:"hostname,omitempty"`
	Path       *HTTPPathModifier `json:"path,omitempty"`
	Port       int32             `json:"port,omitempty"`
	StatusCode int               `json:"statusCode,omitempty"`
}

// HTTPPathModifier replaces the path or its matched prefix.
//
// +k8s:deepcopy-gen=true
type HTTPPathModifier struct {
	Type               string `json:"type"`
	ReplaceFullPath    string `json:"replaceFullPath,omitempty"`
	ReplacePrefixMatch string `json:"replacePrefixMatch,omitempty"`
}

// HTTPRequestMirrorFilter copies requests to another backend.
//
// +k8s:deepcopy-gen=true
type HTTPRequestMirrorFilter struct {
	BackendRef BackendObjectReference `json:"backendRef"`
}

// HTTPURLRewriteFilter rewrites the host name or the path.
//
// +k8s:deepcopy-gen=true
type HTTPURLRewriteFilter struct {
	Hostname string            `json:"hostname,omitempty"`
	Path     *HTTPPathModifier `json:"path,omitempty"`
}

// LocalObjectReference names a resource in the route's namespace.
//
// +k8s:deepcopy-gen=true
type LocalObjectReference struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
}

// BackendObjectReference names a backend: a Service (empty group and kind)
// and its port.
//
// +k8s:deepcopy-gen=true
type BackendObjectReference struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Port      int32  `json:"port,omitempty"`
}

// HTTPBackendRef is a weighted backend of a rule. A nil Weight is 1; 0
// sends it nothing.
//
// +k8s:deepcopy-gen=true
type HTTPBackendRef struct {
	BackendObjectReference `json:",inline"`
	Weight                 *int32            `json:"weight,omitempty"`
	Filters                []HTTPRouteFilter `json:"filters,omitempty"`
}

// EffectiveWeight is the backend's weight with its default (1) applied.
func (b *HTTPBackendRef) EffectiveWeight() int32 {
	if b.Weight == nil {
		return 1
	}
	return *b.Weight
}

// HTTPRouteTimeouts are a rule's timeouts, as Gateway API durations
// ("10s", "1m30s", "500ms").
//
// +k8s:deepcopy-gen=true
type HTTPRouteTimeouts struct {
	// Request bounds the whole request, retries included.
	Request string `json:"request,omitempty"`
	// BackendRequest bounds each attempt.
	BackendRequest string `json:"backendRequest,omitempty"`
}

// HTTPRouteStatus is written by controllers (the Gateway API's RouteStatus).
//
// +k8s:deepcopy-gen=true
type HTTPRouteStatus struct {
	Parents []RouteParentStatus `json:"parents,omitempty"`
}

// RouteParentStatus is a route's status for one parent.
//
// +k8s:deepcopy-gen=true
type RouteParentStatus struct {
	ParentRef      ParentReference    `json:"parentRef"`
	ControllerName string             `json:"controllerName"`
	Conditions     []metav1.Condition `json:"conditions,omitempty"`
}

// IsServiceParent reports whether p names a Service (the GAMMA pattern: the
// route applies to the Service's outbound traffic).
func (p *ParentReference) IsServiceParent() bool {
	return p.Kind == "Service" && (p.Group == "" || p.Group == "core")
}

// IsServerParent reports whether p names a policy.linkerd.io Server.
func (p *ParentReference) IsServerParent() bool {
	return p.Kind == KindServer && groupIs(p.Group, GroupName)
}

var gatewayDuration = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

// ParseGatewayDuration parses a Gateway API duration ("1h30m", "500ms").
func ParseGatewayDuration(s string) (time.Duration, error) {
	if !gatewayDuration.MatchString(s) {
		return 0, fmt.Errorf("%q is not a Gateway API duration (e.g. 10s, 1m30s, 500ms)", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return d, nil
}

var methods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// maxBackendWeight is the Gateway API's largest backend weight.
const maxBackendWeight = 1000000

// Validate checks r, naming the field at fault. The checks are those of the
// CRDs' schemas plus what a schema cannot say: regular expressions compile,
// paths are absolute, a rule's backends do not all weigh 0.
func (r *HTTPRoute) Validate() error { return r.validate() }

func (r *HTTPRoute) validate() error {
	group, _, _ := strings.Cut(r.APIVersion, "/")
	for i, p := range r.Spec.ParentRefs {
		f := fmt.Sprintf("spec.parentRefs[%d]", i)
		if p.Name == "" {
			return fmt.Errorf("%s.name: required", f)
		}
		if group != GatewayGroupName && !p.IsServiceParent() && !p.IsServerParent() {
			return fmt.Errorf("%s.kind: %s %q is not a Server (policy.linkerd.io) or a Service", f, p.Group, p.Kind)
		}
		if p.Port < 0 || p.Port > 65535 {
			return fmt.Errorf("%s.port: %d is not a port number (1-65535)", f, p.Port)
		}
	}
	for i, h := range r.Spec.Hostnames {
		if err := validHostname(h); err != nil {
			return fmt.Errorf("spec.hostnames[%d]: %w", i, err)
		}
	}
	for i := range r.Spec.Rules {
		if err := r.Spec.Rules[i].validate(fmt.Sprintf("spec.rules[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (rule *HTTPRouteRule) validate(f string) error {
	for j, m := range rule.Matches {
		if err := m.validate(fmt.Sprintf("%s.matches[%d]", f, j)); err != nil {
			return err
		}
	}
	for j := range rule.Filters {
		if err := rule.Filters[j].validate(fmt.Sprintf("%s.filters[%d]", f, j)); err != nil {
			return err
		}
	}
	var sum int64
	for j := range rule.BackendRefs {
		b := &rule.BackendRefs[j]
		bf := fmt.Sprintf("%s.backendRefs[%d]", f, j)
		if err := b.BackendObjectReference.validate(bf); err != nil {
			return err
		}
		w := b.EffectiveWeight()
		if w < 0 || w > maxBackendWeight {
			return fmt.Errorf("%s.weight: %d is out of range (0-%d)", bf, w, maxBackendWeight)
		}
		sum += int64(w)
		for k := range b.Filters {
			if err := b.Filters[k].validate(fmt.Sprintf("%s.filters[%d]", bf, k)); err != nil {
				return err
			}
		}
	}
	if len(rule.BackendRefs) > 0 && sum == 0 {
		return fmt.Errorf("%s.backendRefs: the weights sum to 0: no backend would get traffic", f)
	}
	if t := rule.Timeouts; t != nil {
		var req, backend time.Duration
		var err error
		if t.Request != "" {
			if req, err = ParseGatewayDuration(t.Request); err != nil {
				return fmt.Errorf("%s.timeouts.request: %w", f, err)
			}
		}
		if t.BackendRequest != "" {
			if backend, err = ParseGatewayDuration(t.BackendRequest); err != nil {
				return fmt.Errorf("%s.timeouts.backendRequest: %w", f, err)
			}
		}
		if req > 0 && backend > req {
			return fmt.Errorf("%s.timeouts.backendRequest: %s is longer than the request timeout %s", f, t.BackendRequest, t.Request)
		}
	}
	return nil
}

func (m *HTTPRouteMatch) validate(f string) error {
	if p := m.Path; p != nil {
		switch p.Type {
		case "", PathMatchExact, PathMatchPathPrefix:
			if p.Value != "" && !strings.HasPrefix(p.Value, "/") {
				return fmt.Errorf("%s.path.value: %q does not start with /", f, p.Value)
			}
		case PathMatchRegularExpression:
			if _, err := regexp.Compile(p.Value); err != nil {
				return fmt.Errorf("%s.path.value: %w", f, err)
			}
		default:
			return fmt.Errorf("%s.path.type: %q is not Exact, PathPrefix or RegularExpression", f, p.Type)
		}
	}
	if err := validHeaderMatches(f+".headers", m.Headers); err != nil {
		return err
	}
	if err := validHeaderMatches(f+".queryParams", m.QueryParams); err != nil {
		return err
	}
	if m.Method != "" && !slices.Contains(methods, m.Method) {
		return fmt.Errorf("%s.method: %q is not one of %s", f, m.Method, strings.Join(methods, ", "))
	}
	return nil
}

func validHeaderMatches(f string, ms []HTTPHeaderMatch) error {
	for i, h := range ms {
		if h.Name == "" {
			return fmt.Errorf("%s[%d].name: required", f, i)
		}
		switch h.Type {
		case "", HeaderMatchExact:
		case HeaderMatchRegularExpression:
			if _, err := regexp.Compile(h.Value); err != nil {
				return fmt.Errorf("%s[%d].value: %w", f, i, err)
			}
		default:
			return fmt.Errorf("%s[%d].type: %q is not Exact or RegularExpression", f, i, h.Type)
		}
	}
	return nil
}

func (fl *HTTPRouteFilter) validate(f string) error {
	var set bool
	switch fl.Type {
	case FilterRequestHeaderModifier:
		set = fl.RequestHeaderModifier != nil
	case FilterResponseHeaderModifier:
		set = fl.ResponseHeaderModifier != nil
	case FilterRequestRedirect:
		set = fl.RequestRedirect != nil
		if r := fl.RequestRedirect; r != nil {
			if r.StatusCode != 0 && r.StatusCode != 301 && r.StatusCode != 302 {
				return fmt.Errorf("%s.requestRedirect.statusCode: %d is not 301 or 302", f, r.StatusCode)
			}
			if r.Scheme != "" && r.Scheme != "http" && r.Scheme != "https" {
				return fmt.Errorf("%s.requestRedirect.scheme: %q is not http or https", f, r.Scheme)
			}
		}
	case FilterRequestMirror:
		set = fl.RequestMirror != nil
		if set {
			if err := fl.RequestMirror.BackendRef.validate(f + ".requestMirror.backendRef"); err != nil {
				return err
			}
		}
	case FilterURLRewrite:
		set = fl.URLRewrite != nil
	case FilterExtensionRef:
		set = fl.ExtensionRef != nil
	default:
		return fmt.Errorf("%s.type: %q is not a filter type (RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, RequestMirror, URLRewrite, ExtensionRef)", f, fl.Type)
	}
	if !set {
		return fmt.Errorf("%s: type %s without its %s field", f, fl.Type, lowerFirst(fl.Type))
	}
	return nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	if strings.HasPrefix(s, "URL") {
		return "url" + s[3:]
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func (b *BackendObjectReference) validate(f string) error {
	if b.Name == "" {
		return fmt.Errorf("%s.name: required", f)
	}
	if !(b.Kind == "" || b.Kind == "Service") || !(b.Group == "" || b.Group == "core") {
		return fmt.Errorf("%s.kind: %s %q is not a Service", f, b.Group, b.Kind)
	}
	if b.Port < 0 || b.Port > 65535 {
		return fmt.Errorf("%s.port: %d is not a port number (1-65535)", f, b.Port)
	}
	return nil
}

func validHostname(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if name == "" || len(h) > 253 {
		return fmt.Errorf("%q is not a host name", h)
	}
	for _, l := range strings.Split(name, ".") {
		if !portNameLike(l) || strings.Contains(l, "_") {
			return fmt.Errorf("%q is not a host name", h)
		}
	}
	return nil
}

func decodeHTTPRoute(data []byte, group, version string) (*HTTPRoute, error) {
	versions, ok := HTTPRouteVersions[group]
	if !ok {
		return nil, fmt.Errorf("apiVersion: HTTPRoute is not in group %q (%s or %s)", group, GroupName, GatewayGroupName)
	}
	if !slices.Contains(versions, version) {
		return nil, fmt.Errorf("apiVersion: HTTPRoute %s/%s is not served (versions: %s)", group, version, strings.Join(versions, ", "))
	}
	r := &HTTPRoute{}
	if err := yaml.UnmarshalStrict(data, r); err != nil {
		return nil, fmt.Errorf("decoding HTTPRoute: %w", err)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("invalid HTTPRoute: %w", err)
	}
	return r, nil
}
