package destination

import (
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
)

func TestRouteFilters(t *testing.T) {
	const head = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{kind: Service, group: core, name: web, port: 80}]
  rules:
  - filters:
`
	tests := []struct {
		name    string
		filters string
		want    []*destinationv1.RouteFilter
	}{
		{"request headers", `    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-a, value: "1"}]
        add: [{name: x-b, value: "2"}]
        remove: [x-c]
`, []*destinationv1.RouteFilter{{Kind: &destinationv1.RouteFilter_RequestHeaderModifier{RequestHeaderModifier: &destinationv1.HeaderModifier{
			Set: []*destinationv1.HeaderValue{{Name: "x-a", Value: "1"}}, Add: []*destinationv1.HeaderValue{{Name: "x-b", Value: "2"}}, Remove: []string{"x-c"}}}}}},
		{"response headers", `    - type: ResponseHeaderModifier
      responseHeaderModifier: {remove: [server]}
`, []*destinationv1.RouteFilter{{Kind: &destinationv1.RouteFilter_ResponseHeaderModifier{ResponseHeaderModifier: &destinationv1.HeaderModifier{Remove: []string{"server"}}}}}},
		{"redirect", `    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: example.com, port: 8443, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
`, []*destinationv1.RouteFilter{{Kind: &destinationv1.RouteFilter_RequestRedirect{RequestRedirect: &destinationv1.RequestRedirect{
			Scheme: "https", Hostname: "example.com", Port: 8443, StatusCode: 301,
			Path: &destinationv1.PathModifier{Kind: &destinationv1.PathModifier_ReplacePrefixMatch{ReplacePrefixMatch: "/v2"}}}}}}},
		{"rewrite", `    - type: URLRewrite
      urlRewrite: {hostname: other, path: {type: ReplaceFullPath, replaceFullPath: /x}}
`, []*destinationv1.RouteFilter{{Kind: &destinationv1.RouteFilter_UrlRewrite{UrlRewrite: &destinationv1.UrlRewrite{
			Hostname: "other", Path: &destinationv1.PathModifier{Kind: &destinationv1.PathModifier_ReplaceFullPath{ReplaceFullPath: "/x"}}}}}}},
		{"mirror not carried, order kept", `    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 80}}
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-b, value: "2"}]}
`, []*destinationv1.RouteFilter{{Kind: &destinationv1.RouteFilter_RequestHeaderModifier{RequestHeaderModifier: &destinationv1.HeaderModifier{
			Add: []*destinationv1.HeaderValue{{Name: "x-b", Value: "2"}}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := decodeRoute(t, head+tt.filters)
			if err := validHTTPRoute(r); err != nil {
				t.Fatal(err)
			}
			brs := BackendRoutes([]*policy.HTTPRoute{r}, "emojivoto", "web", "cluster.local", 80)
			if len(brs) != 1 {
				t.Fatalf("got %d backend routes, want 1", len(brs))
			}
			got := brs[0].GetFilters()
			if len(got) != len(tt.want) {
				t.Fatalf("got %d filters, want %d: %v", len(got), len(tt.want), got)
			}
			for i := range got {
				if !proto.Equal(got[i], tt.want[i]) {
					t.Errorf("filter %d: got %s, want %s", i, prototext.Format(got[i]), prototext.Format(tt.want[i]))
				}
			}
		})
	}
}
