package h1

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd/proxy/h2"
	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// render formats fields one per line, "name: value", for comparisons.
func render(fields []h2.Field) string {
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(f.Name + ": " + f.Value + "\n")
	}
	return b.String()
}

// TestRequestFields checks the translation of HTTP/1.1 request heads to
// HTTP/2 (the outbound half of l5d-orig-proto).
func TestRequestFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		in    string
		extra []pipeline.Field
		want  string
	}{
		{
			name: "Host becomes :authority, names lower case",
			in:   "GET /a?b=c HTTP/1.1\r\nHost: web.ns:8080\r\nAccept: */*\r\nX-Custom-Thing: v\r\n\r\n",
			want: ":method: GET\n:scheme: http\n:authority: web.ns:8080\n:path: /a?b=c\naccept: */*\nx-custom-thing: v\nl5d-orig-proto: HTTP/1.1\n",
		},
		{
			name: "hop-by-hop fields dropped, TE: trailers kept",
			in: "POST /up HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: 5\r\nX-Hop: 1\r\nProxy-Connection: x\r\n" +
				"TE: trailers, gzip\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n",
			want: ":method: POST\n:scheme: http\n:authority: a\n:path: /up\ntrailer: X-Sum\nte: trailers\nl5d-orig-proto: HTTP/1.1\n",
		},
		{
			name: "content-length kept, repeated fields kept in order",
			in:   "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
			want: ":method: PUT\n:scheme: http\n:authority: a\n:path: /x\ncontent-length: 3\ncookie: a=1\ncookie: b=2\nl5d-orig-proto: HTTP/1.1\n",
		},
		{
			name: "absolute form",
			in:   "GET http://other.example:81?q HTTP/1.1\r\nHost: ignored\r\n\r\n",
			want: ":method: GET\n:scheme: http\n:authority: other.example:81\n:path: /?q\nl5d-orig-proto: HTTP/1.1\n",
		},
		{
			name: "OPTIONS *",
			in:   "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
			want: ":method: OPTIONS\n:scheme: http\n:authority: a\n:path: *\nl5d-orig-proto: HTTP/1.1\n",
		},
		{
			name:  "client's l5d-orig-proto dropped, proxy's extra fields added",
			in:    "GET / HTTP/1.1\r\nHost: a\r\nL5d-Orig-Proto: HTTP/2\r\n\r\n",
			extra: []pipeline.Field{{Name: "l5d-dst-canonical", Value: "web.ns.svc.cluster.local:80"}, {Name: "X-Other", Value: "1"}},
			want:  ":method: GET\n:scheme: http\n:authority: a\n:path: /\nl5d-dst-canonical: web.ns.svc.cluster.local:80\nx-other: 1\nl5d-orig-proto: HTTP/1.1\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h requestHead
			if err := parseRequest([]byte(tc.in), &h); err != nil {
				t.Fatal(err)
			}
			var scratch []byte
			got := render(requestFields(nil, &h, string(h.authority.of(h.raw)), tc.extra, &scratch))
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestWriteH2ResponseHead checks the translation of HTTP/2 response heads
// back to HTTP/1.1.
func TestWriteH2ResponseHead(t *testing.T) {
	t.Parallel()
	fields := []h2.Field{{Name: "content-type", Value: "text/plain"}, {Name: "content-length", Value: "5"},
		{Name: "l5d-orig-proto", Value: "HTTP/1.1"}, {Name: "connection", Value: "close"}, {Name: "x-a", Value: "1"}, {Name: "x-a", Value: "2"}}
	for _, tc := range []struct {
		name           string
		status         int
		chunked, close bool
		want           string
	}{
		{name: "length", status: 200, want: "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nx-a: 1\r\nx-a: 2\r\n\r\n"},
		{name: "chunked drops content-length", status: 200, chunked: true,
			want: "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-a: 1\r\nx-a: 2\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{name: "close", status: 503, close: true,
			want: "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nx-a: 1\r\nx-a: 2\r\nConnection: close\r\n\r\n"},
		{name: "unknown status", status: 599, want: "HTTP/1.1 599 \r\ncontent-type: text/plain\r\ncontent-length: 5\r\nx-a: 1\r\nx-a: 2\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := bufio.NewWriter(&buf)
			writeH2ResponseHead(w, h2.Head{Status: tc.status, Fields: fields}, tc.chunked, tc.close)
			_ = w.Flush()
			if buf.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", buf.String(), tc.want)
			}
		})
	}
}

// TestResponseFields checks the translation of HTTP/1.1 response heads to
// HTTP/2 (the inbound half).
func TestResponseFields(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{
			name: "length",
			in:   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\n",
			want: ":status: 200\ncontent-type: text/plain\ncontent-length: 5\nset-cookie: a\nset-cookie: b\nl5d-orig-proto: HTTP/1.1\n",
		},
		{
			name: "chunked: framing and connection fields dropped",
			in:   "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTrailer: X-Sum\r\n\r\n",
			want: ":status: 201\ntrailer: X-Sum\nl5d-orig-proto: HTTP/1.1\n",
		},
		{
			name: "HTTP/1.0 answer",
			in:   "HTTP/1.0 404 Not Found\r\nServer: old\r\n\r\n",
			want: ":status: 404\nserver: old\nl5d-orig-proto: HTTP/1.1\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h responseHead
			if err := parseResponse([]byte(tc.in), &h, false); err != nil {
				t.Fatal(err)
			}
			var scratch []byte
			if got := render(responseFields(nil, &h, &scratch)); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestLowerNameInterns(t *testing.T) {
	var scratch []byte
	if got := testing.AllocsPerRun(100, func() { _ = lowerName([]byte("Content-Type"), &scratch) }); got != 0 {
		t.Errorf("lowerName of a common name allocates %v times", got)
	}
	if got := lowerName([]byte("X-Rare-Header"), &scratch); got != "x-rare-header" {
		t.Errorf("lowerName = %q", got)
	}
}
