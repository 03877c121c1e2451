// Package routefilter converts HTTPRoute filters to the API messages that
// carry them to the proxies, which apply them (proxy/route.Filters).
package routefilter

import (
	"slices"

	"github.com/linkerd-go/linkerd/pkg/apis/policy"
	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
)

// ToProto turns an HTTPRoute rule's filters into their API messages (the
// destination and inbound policy APIs share them), in order. RequestMirror and ExtensionRef are not carried (the
// proxy does not apply them). The filters are valid.
func ToProto(fs []policy.HTTPRouteFilter) []*destinationv1.RouteFilter {
	var out []*destinationv1.RouteFilter
	for i := range fs {
		f := &fs[i]
		var rf *destinationv1.RouteFilter
		switch {
		case f.Type == policy.FilterRequestHeaderModifier && f.RequestHeaderModifier != nil:
			rf = &destinationv1.RouteFilter{Kind: &destinationv1.RouteFilter_RequestHeaderModifier{
				RequestHeaderModifier: headerModifier(f.RequestHeaderModifier)}}
		case f.Type == policy.FilterResponseHeaderModifier && f.ResponseHeaderModifier != nil:
			rf = &destinationv1.RouteFilter{Kind: &destinationv1.RouteFilter_ResponseHeaderModifier{
				ResponseHeaderModifier: headerModifier(f.ResponseHeaderModifier)}}
		case f.Type == policy.FilterRequestRedirect && f.RequestRedirect != nil:
			r := f.RequestRedirect
			rf = &destinationv1.RouteFilter{Kind: &destinationv1.RouteFilter_RequestRedirect{
				RequestRedirect: &destinationv1.RequestRedirect{Scheme: r.Scheme, Hostname: r.Hostname,
					Path: pathModifier(r.Path), Port: uint32(max(r.Port, 0)), StatusCode: uint32(max(r.StatusCode, 0))}}}
		case f.Type == policy.FilterURLRewrite && f.URLRewrite != nil:
			rf = &destinationv1.RouteFilter{Kind: &destinationv1.RouteFilter_UrlRewrite{
				UrlRewrite: &destinationv1.UrlRewrite{Hostname: f.URLRewrite.Hostname, Path: pathModifier(f.URLRewrite.Path)}}}
		default:
			continue
		}
		out = append(out, rf)
	}
	return out
}

func headerModifier(h *policy.HTTPHeaderFilter) *destinationv1.HeaderModifier {
	out := &destinationv1.HeaderModifier{Remove: slices.Clone(h.Remove)}
	for _, v := range h.Set {
		out.Set = append(out.Set, &destinationv1.HeaderValue{Name: v.Name, Value: v.Value})
	}
	for _, v := range h.Add {
		out.Add = append(out.Add, &destinationv1.HeaderValue{Name: v.Name, Value: v.Value})
	}
	return out
}

func pathModifier(p *policy.HTTPPathModifier) *destinationv1.PathModifier {
	switch {
	case p == nil:
		return nil
	case p.Type == "ReplaceFullPath":
		return &destinationv1.PathModifier{Kind: &destinationv1.PathModifier_ReplaceFullPath{ReplaceFullPath: p.ReplaceFullPath}}
	case p.Type == "ReplacePrefixMatch":
		return &destinationv1.PathModifier{Kind: &destinationv1.PathModifier_ReplacePrefixMatch{ReplacePrefixMatch: p.ReplacePrefixMatch}}
	}
	return nil
}
