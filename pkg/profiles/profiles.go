// Package profiles generates ServiceProfiles (linkerd.io/v1alpha2) for
// `linkerd profile` and `linkerd viz profile`: a commented template, the
// routes of an OpenAPI (Swagger 2.0 or OpenAPI 3) spec, the methods of a
// protobuf file's gRPC services, or the requests observed by tap. Every
// generator returns a profile that v1alpha2.Validate accepts.
package profiles

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	sp "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
)

// DefaultClusterDomain is Kubernetes' default cluster domain.
const DefaultClusterDomain = "cluster.local"

// Service names the service a profile describes.
type Service struct {
	Name      string
	Namespace string
	// ClusterDomain defaults to DefaultClusterDomain.
	ClusterDomain string
}

// FQDN is the service's fully-qualified name, the profile's name:
// web.demo.svc.cluster.local.
func (s Service) FQDN() string {
	domain := s.ClusterDomain
	if domain == "" {
		domain = DefaultClusterDomain
	}
	return fmt.Sprintf("%s.%s.svc.%s", s.Name, s.Namespace, domain)
}

// newProfile is the ServiceProfile of svc with routes.
func newProfile(svc Service, routes []*sp.RouteSpec) *sp.ServiceProfile {
	return &sp.ServiceProfile{
		TypeMeta:   metav1.TypeMeta{APIVersion: sp.SchemeGroupVersion.String(), Kind: sp.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: svc.FQDN(), Namespace: svc.Namespace},
		Spec:       sp.Spec{Routes: routes},
	}
}

// route is a route matching method and the path regular expression re.
func route(name, method, re string) *sp.RouteSpec {
	return &sp.RouteSpec{Name: name, Condition: &sp.RequestMatch{Method: method, PathRegex: re}}
}

// templateParam matches a path template's parameter: {id}.
var templateParam = regexp.MustCompile(`\{[^{}/]*\}`)

// PathRegex turns a path, possibly a template with {parameters} (as
// OpenAPI writes them), into the regular expression of a route's
// pathRegex: the literal parts escaped, each parameter one path segment
// or part of one.
func PathRegex(path string) string {
	var b strings.Builder
	last := 0
	for _, loc := range templateParam.FindAllStringIndex(path, -1) {
		b.WriteString(regexp.QuoteMeta(path[last:loc[0]]))
		b.WriteString(`[^/]*`)
		last = loc[1]
	}
	b.WriteString(regexp.QuoteMeta(path[last:]))
	return b.String()
}

// Render writes p as YAML (output "yaml" or "") or JSON ("json"), without
// the empty fields Kubernetes objects carry (creationTimestamp).
func Render(w io.Writer, p *sp.ServiceProfile, output string) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding the ServiceProfile: %w", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fmt.Errorf("encoding the ServiceProfile: %w", err)
	}
	if meta, ok := obj["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	var out []byte
	switch output {
	case "", "yaml":
		out, err = yaml.Marshal(obj)
	case "json":
		out, err = json.MarshalIndent(obj, "", "  ")
		out = append(out, '\n')
	default:
		return fmt.Errorf("--output must be yaml or json, not %q", output)
	}
	if err != nil {
		return fmt.Errorf("encoding the ServiceProfile: %w", err)
	}
	_, err = w.Write(out)
	return err
}
