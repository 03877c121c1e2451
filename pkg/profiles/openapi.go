package profiles

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	sp "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
)

// The vendor extensions of an OpenAPI operation that Linkerd reads: the
// route's isRetryable and timeout.
const (
	ExtRetryable = "x-linkerd-retryable"
	ExtTimeout   = "x-linkerd-timeout"
)

// openAPIMethods are the operations of a path item, in the order their
// routes are listed.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// openAPIDoc is the part of a Swagger 2.0 or OpenAPI 3 document that
// routes come from.
type openAPIDoc struct {
	Swagger  string `json:"swagger"`
	OpenAPI  string `json:"openapi"`
	BasePath string `json:"basePath"` // Swagger 2.0
	Servers  []struct {
		URL string `json:"url"`
	} `json:"servers"` // OpenAPI 3
	Paths map[string]map[string]json.RawMessage `json:"paths"`
}

// openAPIOperation is what a route takes from an operation.
type openAPIOperation struct {
	Retryable *bool   `json:"x-linkerd-retryable"`
	Timeout   *string `json:"x-linkerd-timeout"`
}

// FromOpenAPI returns the profile of svc with a route per path and
// operation of spec, a Swagger 2.0 or OpenAPI 3 document in JSON or YAML:
// named "METHOD /path/{param}", matching the method and the path with
// each {param} one path segment, under the spec's base path (Swagger's
// basePath, the path of OpenAPI's first server URL). An operation's
// x-linkerd-retryable (boolean) and x-linkerd-timeout (duration) set the
// route's isRetryable and timeout.
func FromOpenAPI(svc Service, spec []byte) (*sp.ServiceProfile, error) {
	raw, err := yaml.YAMLToJSON(spec)
	if err != nil {
		return nil, fmt.Errorf("not a JSON or YAML OpenAPI spec: %w", err)
	}
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' {
		return nil, errors.New("not an OpenAPI spec: the document is not an object")
	}
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("not an OpenAPI spec: %w", err)
	}
	base := ""
	switch {
	case doc.Swagger != "":
		if doc.Swagger != "2.0" {
			return nil, fmt.Errorf("unsupported Swagger version %q (2.0 and OpenAPI 3 are)", doc.Swagger)
		}
		base = doc.BasePath
	case doc.OpenAPI != "":
		if !strings.HasPrefix(doc.OpenAPI, "3.") {
			return nil, fmt.Errorf("unsupported OpenAPI version %q (3.x and Swagger 2.0 are)", doc.OpenAPI)
		}
		if len(doc.Servers) > 0 {
			u, err := url.Parse(doc.Servers[0].URL)
			if err != nil {
				return nil, fmt.Errorf("servers[0].url: %w", err)
			}
			base = u.Path
		}
	default:
		return nil, errors.New(`not an OpenAPI spec: no "openapi" or "swagger" version field`)
	}
	if base != "" && !strings.HasPrefix(base, "/") {
		return nil, fmt.Errorf("base path %q does not start with /", base)
	}
	base = strings.TrimSuffix(base, "/")
	paths := make([]string, 0, len(doc.Paths))
	for p := range doc.Paths {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("paths: %q does not start with /", p)
		}
		paths = append(paths, p)
	}
	if len(paths) == 0 {
		return nil, errors.New("the spec has no paths: no route to generate")
	}
	sort.Strings(paths)
	var routes []*sp.RouteSpec
	for _, p := range paths {
		full := base + p
		for _, m := range openAPIMethods {
			raw, ok := doc.Paths[p][m]
			if !ok {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("paths.%s.%s: %w", p, m, err)
			}
			method := strings.ToUpper(m)
			r := route(method+" "+full, method, PathRegex(full))
			if op.Retryable != nil {
				r.IsRetryable = *op.Retryable
			}
			if op.Timeout != nil {
				r.Timeout = *op.Timeout
			}
			routes = append(routes, r)
		}
	}
	if len(routes) == 0 {
		return nil, errors.New("the spec's paths have no operations: no route to generate")
	}
	p := newProfile(svc, routes)
	if err := sp.Validate(p); err != nil {
		return nil, fmt.Errorf("the generated profile is not valid: %w", err)
	}
	return p, nil
}
