package h1

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"

	"github.com/linkerd-go/linkerd/proxy/pipeline"
)

// Writers of message heads. Errors stick in the bufio.Writer and surface
// at Flush.

// writeRequestHead writes the request head as forwarded upstream: fields
// byte for byte except the hop-by-hop ones, then extra (complete field
// lines); an absolute-form target becomes origin-form with its authority as
// Host.
func writeRequestHead(w *bufio.Writer, h *requestHead, extra []byte) {
	raw := h.raw
	if h.absolute {
		_, _ = w.Write(h.method.of(raw))
		_ = w.WriteByte(' ')
		path := h.path.of(raw)
		if len(path) == 0 || path[0] != '/' {
			_ = w.WriteByte('/')
		}
		_, _ = w.Write(path)
		_, _ = w.WriteString(" HTTP/1.1\r\n")
		if h.host < 0 {
			writeHost(w, h)
		}
	} else {
		_, _ = w.Write(raw[:h.lineEnd+2])
	}
	run := h.lineEnd + 2 // start of the fields not written yet
	for i := range h.fields {
		f := &h.fields[i]
		replaceHost := h.absolute && i == h.host
		if !f.hop && !replaceHost {
			continue
		}
		_, _ = w.Write(raw[run:f.line.start])
		if replaceHost {
			writeHost(w, h)
		}
		run = f.line.end + 2
	}
	_, _ = w.Write(raw[run : len(raw)-2])
	_, _ = w.Write(extra)
	if h.teTrailers {
		_, _ = w.WriteString("TE: trailers\r\n")
	}
	if h.chunked {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	_, _ = w.WriteString("\r\n")
}

// writeRewrittenHead is writeRequestHead with the authority (Host) and
// the target replaced, each when not "" (a route's URLRewrite).
func writeRewrittenHead(w *bufio.Writer, h *requestHead, extra []byte, authority, target string) {
	if authority == "" && target == "" {
		writeRequestHead(w, h, extra)
		return
	}
	raw := h.raw
	_, _ = w.Write(h.method.of(raw))
	_ = w.WriteByte(' ')
	switch {
	case target != "":
		_, _ = w.WriteString(target)
	case h.absolute:
		if p := h.path.of(raw); len(p) > 0 && p[0] == '/' {
			_, _ = w.Write(p)
		} else {
			_ = w.WriteByte('/')
			_, _ = w.Write(p)
		}
	default:
		_, _ = w.Write(h.target.of(raw))
	}
	_, _ = w.WriteString(" HTTP/1.1\r\n")
	if authority != "" {
		_, _ = w.WriteString("Host: ")
		_, _ = w.WriteString(strings.Map(noNewline, authority))
		_, _ = w.WriteString("\r\n")
	} else {
		writeHost(w, h)
	}
	for i := range h.fields {
		f := &h.fields[i]
		if f.hop || i == h.host {
			continue
		}
		_, _ = w.Write(raw[f.line.start : f.line.end+2])
	}
	_, _ = w.Write(extra)
	if h.teTrailers {
		_, _ = w.WriteString("TE: trailers\r\n")
	}
	if h.chunked {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	_, _ = w.WriteString("\r\n")
}

func writeHost(w *bufio.Writer, h *requestHead) {
	_, _ = w.WriteString("Host: ")
	_, _ = w.Write(h.authority.of(h.raw))
	_, _ = w.WriteString("\r\n")
}

// writeResponseHead writes a response head to the client: status line as
// HTTP/1.1, fields byte for byte except the hop-by-hop ones, then the
// framing and connection fields of the client connection.
func writeResponseHead(w *bufio.Writer, h *responseHead, chunked, close bool) {
	writeResponseHeadExtra(w, h, chunked, close, nil)
}

// writeResponseHeadExtra is writeResponseHead with extra fields (a route's
// response header filter) added; invalid ones are left out.
func writeResponseHeadExtra(w *bufio.Writer, h *responseHead, chunked, close bool, extra []pipeline.Field) {
	raw := h.raw
	_, _ = w.WriteString("HTTP/1.1")
	run := h.lineEnd + 2
	_, _ = w.Write(raw[len("HTTP/1.x"):run])
	for i := range h.fields {
		f := &h.fields[i]
		if !f.hop {
			continue
		}
		_, _ = w.Write(raw[run:f.line.start])
		run = f.line.end + 2
	}
	_, _ = w.Write(raw[run : len(raw)-2])
	for _, f := range extra {
		if isToken([]byte(f.Name)) && validValue(f.Value) {
			_, _ = w.WriteString(f.Name)
			_, _ = w.WriteString(": ")
			_, _ = w.WriteString(f.Value)
			_, _ = w.WriteString("\r\n")
		}
	}
	if chunked {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if close {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	_, _ = w.WriteString("\r\n")
}

// writeErrorResponse writes the proxy's answer a as a complete HTTP/1.1
// response.
func writeErrorResponse(w *bufio.Writer, a *pipeline.Answer, close bool) {
	var num [8]byte
	_, _ = w.WriteString("HTTP/1.1 ")
	_, _ = w.Write(strconv.AppendInt(num[:0], int64(a.Status), 10))
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(http.StatusText(a.Status))
	_, _ = w.WriteString("\r\n")
	for _, f := range a.Fields {
		_, _ = w.WriteString(f.Name)
		_, _ = w.WriteString(": ")
		_, _ = w.WriteString(strings.Map(noNewline, f.Value))
		_, _ = w.WriteString("\r\n")
	}
	_, _ = w.WriteString("Content-Length: ")
	_, _ = w.Write(strconv.AppendInt(num[:0], int64(len(a.Body)), 10))
	_, _ = w.WriteString("\r\n")
	if close {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	_, _ = w.WriteString("\r\n")
	_, _ = w.WriteString(a.Body)
}

// noNewline replaces the bytes a field value may not hold with spaces.
func noNewline(r rune) rune {
	if r == '\r' || r == '\n' || r == 0 {
		return ' '
	}
	return r
}
