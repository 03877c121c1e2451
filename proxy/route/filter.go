package route

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// Filters are an HTTPRoute rule's filters as the client proxy applies them
// to the requests its backend route matches, with Gateway API semantics:
//   - RequestHeaderModifier: set replaces the client's field, add appends
//     one, remove leaves it out (pipeline.Edit.Remove, Exchange.Fields);
//   - ResponseHeaderModifier: the same on the relayed response head
//     (pipeline.Edit.RespRemove, RespFields), not on the proxy's own answers;
//   - RequestRedirect: the proxy answers 302 (or statusCode) with Location,
//     without forwarding the request and without l5d-proxy-error;
//   - URLRewrite: the forwarded request's authority (hostname) and path
//     (ReplaceFullPath, ReplacePrefixMatch) are rewritten.
//
// RequestMirror and ExtensionRef are not applied (destination does not
// carry them).
type Filters struct {
	// prefix is the route's matched path prefix ("" when the route
	// matches otherwise), which ReplacePrefixMatch replaces.
	prefix    string
	hasPrefix bool
	edit      pipeline.Edit
	editing   bool
	reqSet    []pipeline.Field
	reqAdd    []pipeline.Field
	redirect  *destinationv1.RequestRedirect
	rewrite   *destinationv1.UrlRewrite
}

// compileFilters compiles a backend route's filters; nil when it has none.
func compileFilters(br *destinationv1.BackendRoute) (*Filters, error) {
	return NewFilters(br.GetFilters(), br.GetCondition().GetPathPrefix())
}

// NewFilters compiles a rule's filters (nil when there are none) for
// requests its match matched; prefix is the match's path prefix ("" when
// it matches paths otherwise), which ReplacePrefixMatch replaces.
func NewFilters(fs []*destinationv1.RouteFilter, prefix string) (*Filters, error) {
	if len(fs) == 0 {
		return nil, nil
	}
	f := &Filters{}
	if prefix != "" {
		f.prefix, f.hasPrefix = prefix, true
	}
	for i, rf := range fs {
		switch k := rf.GetKind().(type) {
		case *destinationv1.RouteFilter_RequestHeaderModifier:
			m := k.RequestHeaderModifier
			for _, h := range m.GetSet() {
				f.edit.Remove = append(f.edit.Remove, h.GetName())
				f.reqSet = append(f.reqSet, pipeline.Field{Name: h.GetName(), Value: h.GetValue()})
			}
			for _, h := range m.GetAdd() {
				f.reqAdd = append(f.reqAdd, pipeline.Field{Name: h.GetName(), Value: h.GetValue()})
			}
			f.edit.Remove = append(f.edit.Remove, m.GetRemove()...)
		case *destinationv1.RouteFilter_ResponseHeaderModifier:
			m := k.ResponseHeaderModifier
			for _, h := range m.GetSet() {
				f.edit.RespRemove = append(f.edit.RespRemove, h.GetName())
				f.edit.RespFields = append(f.edit.RespFields, pipeline.Field{Name: h.GetName(), Value: h.GetValue()})
			}
			for _, h := range m.GetAdd() {
				f.edit.RespFields = append(f.edit.RespFields, pipeline.Field{Name: h.GetName(), Value: h.GetValue()})
			}
			f.edit.RespRemove = append(f.edit.RespRemove, m.GetRemove()...)
		case *destinationv1.RouteFilter_RequestRedirect:
			r := k.RequestRedirect
			if s := r.GetStatusCode(); s != 0 && s != http.StatusMovedPermanently && s != http.StatusFound {
				return nil, fmt.Errorf("filter %d: redirect status %d is not 301 or 302", i, s)
			}
			if f.redirect == nil {
				f.redirect = r
			}
		case *destinationv1.RouteFilter_UrlRewrite:
			if f.rewrite == nil {
				f.rewrite = k.UrlRewrite
			}
		}
	}
	f.editing = len(f.edit.Remove)+len(f.edit.RespRemove)+len(f.edit.RespFields) > 0
	return f, nil
}

// Apply applies the filters to x, before it is forwarded: a redirect is
// a *pipeline.AnswerError (the answer), other filters change what the
// engines forward and relay.
func (f *Filters) Apply(x *pipeline.Exchange) error {
	if f == nil {
		return nil
	}
	if f.redirect != nil {
		return f.redirectAnswer(x)
	}
	if f.editing || f.rewrite != nil {
		e := f.edit // the route's lists are shared, never appended to
		x.Edit = &e
	}
	for _, fl := range f.reqSet {
		x.AddField(fl.Name, fl.Value)
	}
	for _, fl := range f.reqAdd {
		x.AddField(fl.Name, fl.Value)
	}
	if rw := f.rewrite; rw != nil {
		x.Edit.Authority = rw.GetHostname()
		if p := rw.GetPath(); p != nil {
			x.Edit.Path = f.modifyPath(x.Path, p)
		}
	}
	return nil
}

// modifyPath is target (path and query) with its path replaced as p says;
// the query stays.
func (f *Filters) modifyPath(target string, p *destinationv1.PathModifier) string {
	path, query := target, ""
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		path, query = target[:i], target[i:]
	}
	switch k := p.GetKind().(type) {
	case *destinationv1.PathModifier_ReplaceFullPath:
		path = k.ReplaceFullPath
	case *destinationv1.PathModifier_ReplacePrefixMatch:
		if f.hasPrefix {
			path = ReplacePrefix(path, f.prefix, k.ReplacePrefixMatch)
		}
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return path + query
}

// ReplacePrefix replaces the prefix a path prefix match matched (by path
// elements: /foo matches /foo and /foo/bar) with repl, as the Gateway API
// says: /foo/bar with prefix /foo and repl /xyz is /xyz/bar, with repl /
// it is /bar.
func ReplacePrefix(path, prefix, repl string) string {
	prefix = strings.TrimRight(prefix, "/")
	if !strings.HasPrefix(path, prefix) {
		return path
	}
	out := strings.TrimRight(repl, "/") + path[len(prefix):]
	if out == "" {
		return "/"
	}
	return out
}

// redirectAnswer is the redirect of x: scheme, host, port and path of the
// request unless the filter sets them; the port is left out when it is
// the scheme's well-known one (a scheme set without a port takes it).
func (f *Filters) redirectAnswer(x *pipeline.Exchange) error {
	r := f.redirect
	scheme := "http"
	host, port := x.Authority, ""
	if h, p, err := net.SplitHostPort(x.Authority); err == nil {
		host, port = h, p
	}
	if port == "" && x.Conn != nil && x.Conn.OrigDst.IsValid() {
		port = strconv.Itoa(int(x.Conn.OrigDst.Port()))
	}
	if r.GetScheme() != "" {
		scheme = r.GetScheme()
		port = wellKnownPort(scheme)
	}
	if r.GetHostname() != "" {
		host = r.GetHostname()
	}
	if r.GetPort() != 0 {
		port = strconv.FormatUint(uint64(r.GetPort()), 10)
	}
	hostport := host
	if port != "" && port != wellKnownPort(scheme) {
		hostport = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	target := x.Path
	if p := r.GetPath(); p != nil {
		target = f.modifyPath(target, p)
	}
	status := int(r.GetStatusCode())
	if status == 0 {
		status = http.StatusFound
	}
	loc := scheme + "://" + hostport + target
	return &pipeline.AnswerError{
		Answer: &pipeline.Answer{Status: status, Fields: []pipeline.Field{{Name: "location", Value: loc}}},
		Reason: "redirected by the route to " + loc,
	}
}

func wellKnownPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}
