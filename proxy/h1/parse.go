package h1

import (
	"bytes"
	"errors"
)

// Reasons a request is not forwarded by the fast path. Malformed requests,
// ambiguous framing (RFC 9112 §6.3: request smuggling) and requests beyond
// the limits are answered by the fast path itself (see RejectStatus) and
// the connection is closed; the rest (HTTP/1.0, CONNECT, Upgrade, Expect,
// unusual targets) are handed off to the general-purpose server, after
// their framing was checked all the same.
var (
	errBareLF         = errors.New("h1: line not terminated by CRLF")
	errRequestLine    = errors.New("h1: unsupported or malformed request line")
	errHTTP10         = errors.New("h1: HTTP/1.0 request")
	errConnect        = errors.New("h1: CONNECT request")
	errTarget         = errors.New("h1: unsupported request target")
	errHeaderField    = errors.New("h1: malformed header field")
	errTooManyHeaders = errors.New("h1: too many header fields")
	errHost           = errors.New("h1: missing, repeated or unusual Host")
	errFraming        = errors.New("h1: ambiguous or unsupported message framing")
	errUpgrade        = errors.New("h1: protocol upgrade")
	errExpect         = errors.New("h1: Expect header")
)

// Response head errors: the upstream answered something the proxy cannot relay.
var (
	errStatusLine      = errors.New("h1: malformed status line")
	errResponseHeader  = errors.New("h1: malformed response header field")
	errResponseLength  = errors.New("h1: invalid Content-Length in response")
	errResponseTE      = errors.New("h1: unsupported Transfer-Encoding in response")
	errResponseUpgrade = errors.New("h1: unexpected 101 Switching Protocols")
)

// Header count limits: a request with more fields is answered 431, a
// response with more is an upstream error.
const (
	// MaxRequestFields is the most header fields a request may have (as
	// Linkerd's proxy: more get 431 Request Header Fields Too Large).
	MaxRequestFields  = 100
	maxRequestFields  = MaxRequestFields
	maxResponseFields = 1024
)

// span locates bytes in a head: head[start:end].
type span struct{ start, end int32 }

func (s span) of(b []byte) []byte { return b[s.start:s.end] }

// kind names the header fields the proxy looks at.
type kind uint8

const (
	kOther kind = iota
	kHost
	kContentLength
	kTransferEncoding
	kConnection
	kKeepAlive
	kProxyConnection
	kTE
	kUpgrade
	kExpect
	kContentType
	kGRPCStatus
)

// field is one header field line of a head.
type field struct {
	line  span // without CRLF
	name  span
	value span // without surrounding whitespace
	kind  kind
	hop   bool // connection-specific: not forwarded
}

// scanHead looks for the blank line ending a message head in b, starting at
// from (a line start). It returns the head's length through that line, or
// 0 and the offset to resume scanning from once more bytes arrive.
func scanHead(b []byte, from int) (n, next int, err error) {
	i := from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0, i, nil
		}
		lf := i + j
		if lf == i || b[lf-1] != '\r' {
			return 0, 0, errBareLF
		}
		if lf-1 == i {
			return lf + 1, 0, nil
		}
		i = lf + 1
	}
}

// requestHead is a parsed request head. Spans refer to raw, which aliases
// the connection's read buffer.
type requestHead struct {
	raw     []byte
	fields  []field
	method  span
	target  span
	lineEnd int32 // end of the request line (before CRLF)

	absolute  bool // absolute-form target: authority and path come from it
	authority span // Host value, or the absolute-form authority
	path      span // absolute-form path and query; empty means "/"
	host      int  // index of the Host field, -1 when absent

	contentLength int64 // -1 when absent
	chunked       bool
	close         bool // Connection: close
	teTrailers    bool // TE lists "trailers": forwarded as TE: trailers
	grpc          bool // Content-Type application/grpc*
	head          bool // HEAD: the response has no body
	http10        bool // HTTP/1.0 request (handed off)
}

// RejectStatus returns the status the fast path answers a request with
// when parsing its head failed with err: 400 for malformed heads and
// ambiguous framing, 431 for heads beyond the limits; 0 when the request
// is handed off instead.
func RejectStatus(err error) int {
	switch err {
	case nil, errHTTP10, errConnect, errUpgrade, errExpect, errTarget:
		return 0
	case errTooManyHeaders, errHeadTooBig:
		return 431 // Request Header Fields Too Large
	default:
		return 400
	}
}

// parseRequest parses raw, a complete request head. A non-nil error means
// the request is not forwarded by the fast path: it is answered (see
// RejectStatus) or handed off. A request is handed off only when its
// header fields and framing are valid.
func parseRequest(raw []byte, h *requestHead) error {
	*h = requestHead{raw: raw, fields: h.fields[:0], contentLength: -1, host: -1}
	lf := bytes.IndexByte(raw, '\n')
	h.lineEnd = int32(lf - 1)
	line := raw[:lf-1]

	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return errRequestLine
	}
	h.method = span{0, int32(sp)}
	rest := line[sp+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errRequestLine
	}
	h.target = span{int32(sp + 1), int32(sp + 1 + sp2)}
	var handOff error
	switch version := rest[sp2+1:]; string(version) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.http10 = true
		handOff = errHTTP10
	default:
		return errRequestLine
	}
	method := h.method.of(raw)
	switch string(method) {
	case "CONNECT":
		if handOff == nil {
			handOff = errConnect
		}
	case "PRI":
		return errRequestLine
	case "HEAD":
		h.head = true
	}
	if handOff == nil {
		handOff = h.parseTarget()
	}

	if err := parseFields(raw, int(lf+1), &h.fields, maxRequestFields); err != nil {
		if err == errTooManyHeaders {
			return err
		}
		return errHeaderField
	}
	if err := h.interpret(handOff != nil); err != nil {
		return err
	}
	return handOff
}

func (h *requestHead) parseTarget() error {
	t := h.target.of(h.raw)
	for _, c := range t {
		if c <= ' ' || c >= 0x7f {
			return errTarget
		}
	}
	switch {
	case t[0] == '/':
		return nil
	case len(t) == 1 && t[0] == '*':
		if string(h.method.of(h.raw)) != "OPTIONS" {
			return errTarget
		}
		return nil
	}
	// absolute-form: http://authority/path?query
	var n int
	switch {
	case hasPrefixFold(t, "http://"):
		n = len("http://")
	case hasPrefixFold(t, "https://"):
		n = len("https://")
	default:
		return errTarget
	}
	end := n
	for end < len(t) && t[end] != '/' && t[end] != '?' && t[end] != '#' {
		end++
	}
	if end == n || bytes.IndexByte(t[n:end], '@') >= 0 || !validHost(t[n:end]) {
		return errTarget
	}
	if end < len(t) && t[end] == '#' {
		return errTarget
	}
	h.absolute = true
	h.authority = span{h.target.start + int32(n), h.target.start + int32(end)}
	h.path = span{h.target.start + int32(end), h.target.end}
	return nil
}

// interpret applies the header fields' meaning: framing, connection
// options and the hop-by-hop fields that are not forwarded. Framing is
// checked first and always; lenient (a request handed off anyway) skips
// the Host checks, which the general-purpose server makes.
func (h *requestHead) interpret(lenient bool) error {
	raw := h.raw
	hasTE, contentType := false, false
	var handOff error
	hostErr := false
	for i := range h.fields {
		f := &h.fields[i]
		v := f.value.of(raw)
		switch f.kind {
		case kHost:
			if h.host >= 0 {
				hostErr = true
				continue
			}
			h.host = i
			if !h.absolute {
				h.authority = f.value
			}
		case kContentLength:
			if h.contentLength >= 0 {
				return errFraming
			}
			n, ok := parseLength(v)
			if !ok {
				return errFraming
			}
			h.contentLength = n
		case kTransferEncoding:
			// Only one coding, "chunked", is accepted: anything else, and
			// any Transfer-Encoding on HTTP/1.0, is ambiguous framing.
			if hasTE || h.http10 || !equalFold(v, "chunked") {
				return errFraming
			}
			hasTE = true
			f.hop = true
		case kConnection:
			f.hop = true
			forEachToken(v, func(tok []byte) {
				if equalFold(tok, "close") {
					h.close = true
				}
			})
		case kTE:
			f.hop = true
			forEachToken(v, func(tok []byte) {
				if equalFold(tok, "trailers") {
					h.teTrailers = true
				}
			})
		case kKeepAlive, kProxyConnection:
			f.hop = true
		case kUpgrade:
			if handOff == nil {
				handOff = errUpgrade
			}
		case kExpect:
			if handOff == nil {
				handOff = errExpect
			}
		case kContentType:
			if !contentType {
				contentType = true
				h.grpc = bytes.HasPrefix(v, []byte("application/grpc"))
			}
		}
	}
	if hasTE && h.contentLength >= 0 {
		// RFC 9112 §6.3: a request smuggling attempt, or a broken client.
		return errFraming
	}
	h.chunked = hasTE
	if !lenient {
		if hostErr || (h.host < 0 && !h.absolute) {
			return errHost
		}
		if h.host >= 0 && !validHost(h.fields[h.host].value.of(raw)) {
			return errHost
		}
	}
	markConnectionOptions(raw, h.fields)
	return handOff
}

// drop marks the fields called name as not forwarded.
func (h *requestHead) drop(name []byte) {
	for i := range h.fields {
		if equalFoldBytes(h.fields[i].name.of(h.raw), name) {
			h.fields[i].hop = true
		}
	}
}

// drop leaves the named fields (any case) out of the relayed response.
func (h *responseHead) drop(names []string) {
	for _, name := range names {
		for i := range h.fields {
			if equalFoldBytes(h.fields[i].name.of(h.raw), []byte(name)) {
				h.fields[i].hop = true
			}
		}
	}
}

// responseHead is a parsed response head; spans refer to raw.
type responseHead struct {
	raw     []byte
	fields  []field
	status  int
	lineEnd int32

	http10        bool
	contentLength int64 // -1 when absent
	chunked       bool
	close         bool  // Connection: close
	grpcStatus    int32 // -1 when absent or not looked for
}

// parseResponse parses raw, a complete response head. grpc asks for the
// grpc-status header's value (trailers-only gRPC responses).
func parseResponse(raw []byte, h *responseHead, grpc bool) error {
	*h = responseHead{raw: raw, fields: h.fields[:0], contentLength: -1, grpcStatus: -1}
	lf := bytes.IndexByte(raw, '\n')
	h.lineEnd = int32(lf - 1)
	line := raw[:lf-1]
	// HTTP/1.x SP 3DIGIT [SP reason-phrase]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' {
		return errStatusLine
	}
	switch line[7] {
	case '1':
	case '0':
		h.http10 = true
	default:
		return errStatusLine
	}
	st := line[9:12]
	if !isDigit(st[0]) || !isDigit(st[1]) || !isDigit(st[2]) || st[0] == '0' {
		return errStatusLine
	}
	h.status = int(st[0]-'0')*100 + int(st[1]-'0')*10 + int(st[2]-'0')
	if len(line) > 12 {
		if line[12] != ' ' {
			return errStatusLine
		}
		for _, c := range line[13:] {
			if !fieldValueByte(c) {
				return errStatusLine
			}
		}
	}
	if err := parseFields(raw, lf+1, &h.fields, maxResponseFields); err != nil {
		if err == errTooManyHeaders {
			return err
		}
		return errResponseHeader
	}
	return h.interpret(grpc)
}

func (h *responseHead) interpret(grpc bool) error {
	raw := h.raw
	hasTE := false
	for i := range h.fields {
		f := &h.fields[i]
		v := f.value.of(raw)
		switch f.kind {
		case kContentLength:
			n, ok := parseLength(v)
			if !ok || (h.contentLength >= 0 && n != h.contentLength) {
				return errResponseLength
			}
			h.contentLength = n
		case kTransferEncoding:
			if hasTE || !equalFold(v, "chunked") {
				return errResponseTE
			}
			hasTE = true
			f.hop = true
		case kConnection:
			f.hop = true
			forEachToken(v, func(tok []byte) {
				if equalFold(tok, "close") {
					h.close = true
				}
			})
		case kKeepAlive, kProxyConnection, kTE, kUpgrade:
			f.hop = true
		case kGRPCStatus:
			if grpc && h.grpcStatus < 0 {
				if code, ok := parseGRPCStatus(v); ok {
					h.grpcStatus = code
				}
			}
		}
	}
	if h.status == 101 {
		return errResponseUpgrade
	}
	h.chunked = hasTE
	if hasTE {
		// Transfer-Encoding overrides Content-Length, which must not be forwarded.
		for i := range h.fields {
			if h.fields[i].kind == kContentLength {
				h.fields[i].hop = true
			}
		}
		h.contentLength = -1
	}
	markConnectionOptions(raw, h.fields)
	return nil
}

// parseFields parses the header field lines of head from offset pos up to
// the final blank line, appending them to fields.
func parseFields(raw []byte, pos int, fields *[]field, max int) error {
	end := len(raw) - 2 // the final CRLF
	for pos < end {
		lf := pos + bytes.IndexByte(raw[pos:], '\n')
		f, ok := parseField(raw, pos, lf-1)
		if !ok {
			return errHeaderField
		}
		if len(*fields) == max {
			return errTooManyHeaders
		}
		*fields = append(*fields, f)
		pos = lf + 1
	}
	return nil
}

// parseField parses the field line raw[start:end]: a token, a colon and a
// value of visible characters, spaces, tabs and obs-text. Obsolete line
// folding (a line starting with whitespace) is rejected.
func parseField(raw []byte, start, end int) (field, bool) {
	i := start
	for i < end && tchar[raw[i]] {
		i++
	}
	if i == start || i == end || raw[i] != ':' {
		return field{}, false
	}
	f := field{line: span{int32(start), int32(end)}, name: span{int32(start), int32(i)}}
	vs := i + 1
	for vs < end && (raw[vs] == ' ' || raw[vs] == '\t') {
		vs++
	}
	ve := end
	for ve > vs && (raw[ve-1] == ' ' || raw[ve-1] == '\t') {
		ve--
	}
	for _, c := range raw[vs:ve] {
		if !fieldValueByte(c) {
			return field{}, false
		}
	}
	f.value = span{int32(vs), int32(ve)}
	f.kind = kindOf(raw[start:i])
	return f, true
}

// markConnectionOptions marks as hop-by-hop the fields that a Connection
// header names.
func markConnectionOptions(raw []byte, fields []field) {
	for i := range fields {
		if fields[i].kind != kConnection {
			continue
		}
		forEachToken(fields[i].value.of(raw), func(tok []byte) {
			if equalFold(tok, "close") || equalFold(tok, "keep-alive") {
				return
			}
			for j := range fields {
				if fields[j].kind != kConnection && equalFoldBytes(fields[j].name.of(raw), tok) {
					fields[j].hop = true
				}
			}
		})
	}
}

func kindOf(name []byte) kind {
	switch len(name) {
	case 2:
		if equalFold(name, "te") {
			return kTE
		}
	case 4:
		if equalFold(name, "host") {
			return kHost
		}
	case 6:
		if equalFold(name, "expect") {
			return kExpect
		}
	case 7:
		if equalFold(name, "upgrade") {
			return kUpgrade
		}
	case 10:
		if equalFold(name, "connection") {
			return kConnection
		}
		if equalFold(name, "keep-alive") {
			return kKeepAlive
		}
	case 11:
		if equalFold(name, "grpc-status") {
			return kGRPCStatus
		}
	case 12:
		if equalFold(name, "content-type") {
			return kContentType
		}
	case 14:
		if equalFold(name, "content-length") {
			return kContentLength
		}
	case 16:
		if equalFold(name, "proxy-connection") {
			return kProxyConnection
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			return kTransferEncoding
		}
	}
	return kOther
}

// forEachToken calls fn with each non-empty element of a comma-separated list.
func forEachToken(v []byte, fn func([]byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var tok []byte
		if i < 0 {
			tok, v = v, nil
		} else {
			tok, v = v[:i], v[i+1:]
		}
		tok = bytes.Trim(tok, " \t")
		if len(tok) > 0 {
			fn(tok)
		}
	}
}

// parseLength parses a Content-Length value: 1 to 18 digits.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseGRPCStatus parses a grpc-status value: a small decimal number.
func parseGRPCStatus(v []byte) (int32, bool) {
	if len(v) == 0 || len(v) > 9 {
		return 0, false
	}
	var n int32
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int32(c-'0')
	}
	return n, true
}

// validHost reports whether a Host value (or absolute-form authority) uses
// only characters of a host, an IP literal and a port. The general-purpose
// server judges the rest.
func validHost(v []byte) bool {
	for _, c := range v {
		if !hostChar[c] {
			return false
		}
	}
	return true
}

func isToken(b []byte) bool {
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return len(b) > 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// fieldValueByte reports whether c may appear in a field value: HTAB, SP,
// visible ASCII and obs-text.
func fieldValueByte(c byte) bool { return c == '\t' || (c >= ' ' && c != 0x7f) }

// equalFold compares b with s, a lower-case ASCII string, ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

func equalFoldString(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && equalFold(b[:len(prefix)], prefix)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

var tchar, hostChar [256]bool

func init() {
	for c := '0'; c <= '9'; c++ {
		tchar[c], hostChar[c] = true, true
	}
	for c := 'a'; c <= 'z'; c++ {
		tchar[c], hostChar[c] = true, true
		tchar[c-'a'+'A'], hostChar[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		tchar[c] = true
	}
	// reg-name (unreserved, pct-encoded, sub-delims), IP literals and the port.
	for _, c := range "-._~%!$&'()*+,;=:[]" {
		hostChar[c] = true
	}
}
