package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/bufbuild/protocompile/parser"
	"github.com/bufbuild/protocompile/reporter"

	sp "github.com/linkerd-go/linkerd/pkg/apis/serviceprofile/v1alpha2"
)

// FromProto returns the profile of svc with a route per method of the
// gRPC services of a protobuf file (its source; filename names it in
// errors): gRPC calls are POST /package.Service/Method, which the route
// matches; it is named after the method (Service.Method when two services
// of the file share a method name). Imports are not read: the services
// are all a route needs.
func FromProto(svc Service, filename string, source []byte) (*sp.ServiceProfile, error) {
	handler := reporter.NewHandler(nil) // stops at the first error
	file, err := parser.Parse(filename, bytes.NewReader(source), handler)
	if err != nil {
		return nil, err // "file.proto:3:9: syntax error: ..."
	}
	res, err := parser.ResultFromAST(file, true, handler)
	if err != nil {
		return nil, err
	}
	fd := res.FileDescriptorProto()
	prefix := "/"
	if pkg := fd.GetPackage(); pkg != "" {
		prefix += pkg + "."
	}
	seen := map[string]int{}
	for _, s := range fd.GetService() {
		for _, m := range s.GetMethod() {
			seen[m.GetName()]++
		}
	}
	var routes []*sp.RouteSpec
	for _, s := range fd.GetService() {
		for _, m := range s.GetMethod() {
			name := m.GetName()
			if seen[name] > 1 {
				name = s.GetName() + "." + name
			}
			path := prefix + s.GetName() + "/" + m.GetName()
			routes = append(routes, route(name, http.MethodPost, regexp.QuoteMeta(path)))
		}
	}
	if len(routes) == 0 {
		return nil, errors.New("the file defines no service methods: no route to generate")
	}
	p := newProfile(svc, routes)
	if err := sp.Validate(p); err != nil {
		return nil, fmt.Errorf("the generated profile is not valid: %w", err)
	}
	return p, nil
}
