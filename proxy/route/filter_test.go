package route

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	destinationv1 "github.com/linkerd-go/linkerd/proto/destination/v1"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

func TestReplacePrefix(t *testing.T) {
	tests := []struct{ path, prefix, repl, want string }{
		{"/foo", "/foo", "/xyz", "/xyz"},
		{"/foo/", "/foo", "/xyz", "/xyz/"},
		{"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
		{"/foo", "/foo", "/", "/"},
		{"/foo/", "/foo", "/", "/"},
		{"/foo/bar", "/foo", "/", "/bar"},
		{"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
		{"/bar", "/", "/xyz", "/xyz/bar"},
		{"/other", "/foo", "/xyz", "/other"},
	}
	for _, tt := range tests {
		if got := ReplacePrefix(tt.path, tt.prefix, tt.repl); got != tt.want {
			t.Errorf("ReplacePrefix(%q, %q, %q) = %q, want %q", tt.path, tt.prefix, tt.repl, got, tt.want)
		}
	}
}

func full(p string) *destinationv1.PathModifier {
	return &destinationv1.PathModifier{Kind: &destinationv1.PathModifier_ReplaceFullPath{ReplaceFullPath: p}}
}

func prefixed(p string) *destinationv1.PathModifier {
	return &destinationv1.PathModifier{Kind: &destinationv1.PathModifier_ReplacePrefixMatch{ReplacePrefixMatch: p}}
}

// filtersOf compiles one backend route matching prefix with fs.
func filtersOf(t *testing.T, prefix string, fs ...*destinationv1.RouteFilter) *Filters {
	t.Helper()
	f, err := compileFilters(&destinationv1.BackendRoute{Condition: &destinationv1.RequestMatch{PathPrefix: prefix}, Filters: fs})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRedirect(t *testing.T) {
	redirect := func(r *destinationv1.RequestRedirect) *destinationv1.RouteFilter {
		return &destinationv1.RouteFilter{Kind: &destinationv1.RouteFilter_RequestRedirect{RequestRedirect: r}}
	}
	tests := []struct {
		name       string
		authority  string
		r          *destinationv1.RequestRedirect
		wantStatus int
		wantLoc    string
	}{
		{"defaults keep the request's", "web.ns:8080", &destinationv1.RequestRedirect{}, 302, "http://web.ns:8080/api/v1?x=1"},
		{"port 80 left out", "web.ns:80", &destinationv1.RequestRedirect{}, 302, "http://web.ns/api/v1?x=1"},
		{"scheme takes its port", "web.ns:8080", &destinationv1.RequestRedirect{Scheme: "https"}, 302, "https://web.ns/api/v1?x=1"},
		{"explicit port", "web.ns:80", &destinationv1.RequestRedirect{Scheme: "https", Port: 8443, StatusCode: 301}, 301, "https://web.ns:8443/api/v1?x=1"},
		{"hostname", "web.ns:80", &destinationv1.RequestRedirect{Hostname: "example.com"}, 302, "http://example.com/api/v1?x=1"},
		{"full path", "web.ns", &destinationv1.RequestRedirect{Path: full("/new")}, 302, "http://web.ns:9000/new?x=1"},
		{"prefix", "web.ns:80", &destinationv1.RequestRedirect{Path: prefixed("/v2")}, 302, "http://web.ns/v2/v1?x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filtersOf(t, "/api", redirect(tt.r))
			x := &pipeline.Exchange{Authority: tt.authority, Path: "/api/v1?x=1",
				Conn: &pipeline.Conn{OrigDst: netip.MustParseAddrPort("10.0.0.1:9000")}}
			err := f.Apply(x)
			var ae *pipeline.AnswerError
			if !errors.As(err, &ae) {
				t.Fatalf("Apply: %v, want an answer", err)
			}
			if ae.Answer.Status != tt.wantStatus {
				t.Errorf("status %d, want %d", ae.Answer.Status, tt.wantStatus)
			}
			if got := ae.Answer.Fields; len(got) != 1 || got[0].Name != "location" || got[0].Value != tt.wantLoc {
				t.Errorf("fields %v, want location: %s", got, tt.wantLoc)
			}
			// Fail sends the answer as is: no l5d-proxy-error, not a failure.
			a := x.Fail(0, err)
			if a != ae.Answer || x.Err != nil || x.Status != tt.wantStatus {
				t.Errorf("Fail: answer %+v, err %v, status %d", a, x.Err, x.Status)
			}
		})
	}
	if _, err := compileFilters(&destinationv1.BackendRoute{Filters: []*destinationv1.RouteFilter{redirect(&destinationv1.RequestRedirect{StatusCode: 307})}}); err == nil {
		t.Error("status 307 compiled")
	}
}

func TestHeaderAndRewriteFilters(t *testing.T) {
	hv := func(n, v string) *destinationv1.HeaderValue { return &destinationv1.HeaderValue{Name: n, Value: v} }
	mod := func(set, add []*destinationv1.HeaderValue, remove ...string) *destinationv1.HeaderModifier {
		return &destinationv1.HeaderModifier{Set: set, Add: add, Remove: remove}
	}
	tests := []struct {
		name       string
		filters    []*destinationv1.RouteFilter
		wantFields []pipeline.Field
		wantEdit   *pipeline.Edit
	}{
		{"none", nil, nil, nil},
		{"request set add remove", []*destinationv1.RouteFilter{{Kind: &destinationv1.RouteFilter_RequestHeaderModifier{
			RequestHeaderModifier: mod([]*destinationv1.HeaderValue{hv("x-a", "1")}, []*destinationv1.HeaderValue{hv("x-b", "2")}, "x-c")}}},
			[]pipeline.Field{{Name: "x-a", Value: "1"}, {Name: "x-b", Value: "2"}},
			&pipeline.Edit{Remove: []string{"x-a", "x-c"}}},
		{"response set add remove", []*destinationv1.RouteFilter{{Kind: &destinationv1.RouteFilter_ResponseHeaderModifier{
			ResponseHeaderModifier: mod([]*destinationv1.HeaderValue{hv("x-a", "1")}, []*destinationv1.HeaderValue{hv("x-b", "2")}, "server")}}},
			nil,
			&pipeline.Edit{RespRemove: []string{"x-a", "server"}, RespFields: []pipeline.Field{{Name: "x-a", Value: "1"}, {Name: "x-b", Value: "2"}}}},
		{"rewrite host and prefix", []*destinationv1.RouteFilter{{Kind: &destinationv1.RouteFilter_UrlRewrite{
			UrlRewrite: &destinationv1.UrlRewrite{Hostname: "other", Path: prefixed("/")}}}},
			nil, &pipeline.Edit{Authority: "other", Path: "/v1?x=1"}},
		{"rewrite full path", []*destinationv1.RouteFilter{{Kind: &destinationv1.RouteFilter_UrlRewrite{
			UrlRewrite: &destinationv1.UrlRewrite{Path: full("/z")}}}},
			nil, &pipeline.Edit{Path: "/z?x=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filtersOf(t, "/api", tt.filters...)
			x := &pipeline.Exchange{Authority: "web.ns:80", Path: "/api/v1?x=1"}
			if err := f.Apply(x); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(x.Fields, tt.wantFields) {
				t.Errorf("fields %v, want %v", x.Fields, tt.wantFields)
			}
			switch {
			case tt.wantEdit == nil && x.Edit != nil:
				t.Errorf("edit %+v, want none", x.Edit)
			case tt.wantEdit != nil && x.Edit == nil:
				t.Errorf("no edit, want %+v", tt.wantEdit)
			case tt.wantEdit != nil:
				e, w := x.Edit, tt.wantEdit
				if !slices.Equal(e.Remove, w.Remove) || !slices.Equal(e.RespRemove, w.RespRemove) || !slices.Equal(e.RespFields, w.RespFields) ||
					e.Authority != w.Authority || e.Path != w.Path {
					t.Errorf("edit %+v, want %+v", e, w)
				}
			}
			if x.Path != "/api/v1?x=1" || x.Authority != "web.ns:80" {
				t.Errorf("the exchange's request changed: %s %s", x.Authority, x.Path)
			}
		})
	}
}
