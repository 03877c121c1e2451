// Package detect decides which protocol a client speaks by looking at the
// first bytes it sends on a connection: HTTP/1.x, HTTP/2 with prior
// knowledge, a TLS ClientHello (with its SNI), or anything else ("opaque").
//
// Classify works on a byte slice and is pure; Detect reads from a net.Conn
// until Classify can decide and hands back a Conn that replays what it read.
package detect

import "bytes"

// Protocol is the protocol detected on a connection.
type Protocol uint8

// The protocols Classify can report.
const (
	// Opaque means no known protocol was recognised; the stream should be
	// forwarded as raw TCP.
	Opaque Protocol = iota
	// HTTP1 is an HTTP/1.0 or HTTP/1.1 request stream.
	HTTP1
	// HTTP2 is HTTP/2 with prior knowledge (the client preface).
	HTTP2
	// TLS is a TLS handshake starting with a ClientHello.
	TLS
)

// String returns the protocol's name: "opaque", "http/1", "http/2" or "tls".
func (p Protocol) String() string {
	switch p {
	case Opaque:
		return "opaque"
	case HTTP1:
		return "http/1"
	case HTTP2:
		return "http/2"
	case TLS:
		return "tls"
	default:
		return "unknown"
	}
}

// Result is the outcome of protocol detection.
type Result struct {
	// Protocol is the detected protocol.
	Protocol Protocol
	// SNI is the server_name from the TLS ClientHello; it is empty when the
	// protocol is not TLS, when the client sent no SNI, or when the
	// ClientHello could not be parsed.
	SNI string
	// TimedOut reports that detection gave up because the client did not
	// send enough bytes in time. Protocol is then Opaque.
	TimedOut bool
}

const (
	// MaxRequestLine is the longest HTTP/1 request line (including CRLF)
	// that is recognised; longer lines classify as Opaque.
	MaxRequestLine = 16 * 1024

	// tlsRecordHeaderLen is the length of a TLS record header.
	tlsRecordHeaderLen = 5
	// tlsMaxPlaintext is the largest TLSPlaintext fragment (RFC 8446 §5.1).
	tlsMaxPlaintext = 16 * 1024

	// MaxPeek is the most bytes Classify ever needs to decide, and the size
	// of the buffer Detect reads into: one full TLS record.
	MaxPeek = tlsRecordHeaderLen + tlsMaxPlaintext
)

// h2Preface is the HTTP/2 client connection preface (RFC 9113 §3.4).
var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// Classify examines the first bytes a client sent. When done is false, b is
// a prefix that could still become more than one protocol and more bytes are
// needed. Once done is true for some b, appending bytes to b does not change
// the result. Classify decides at the latest when len(b) reaches MaxPeek.
func Classify(b []byte) (r Result, done bool) {
	var c classifier
	return c.classify(b)
}

// classifier holds the progress of an incremental classification so that
// Detect does not rescan a long HTTP/1 request line on every read. Each call
// to classify must pass the previous input with zero or more bytes appended.
type classifier struct {
	h1 h1Scanner
}

func (c *classifier) classify(b []byte) (Result, bool) {
	if len(b) == 0 {
		return Result{}, false
	}
	if b[0] == 0x16 {
		return classifyTLS(b)
	}
	if b[0] == h2Preface[0] {
		n := min(len(b), len(h2Preface))
		if bytes.Equal(b[:n], h2Preface[:n]) {
			if n == len(h2Preface) {
				return Result{Protocol: HTTP2}, true
			}
			return Result{}, false
		}
		// Not the preface; it may still be an HTTP/1 request ("POST", "PUT").
	}
	switch c.h1.scan(b) {
	case h1Yes:
		return Result{Protocol: HTTP1}, true
	case h1No:
		return Result{Protocol: Opaque}, true
	default:
		return Result{}, false
	}
}

type h1Verdict uint8

const (
	h1More h1Verdict = iota
	h1Yes
	h1No
)

type h1State uint8

const (
	h1Method h1State = iota
	h1Target
	h1Version
)

// h1Scanner recognises an HTTP/1.x request line
//
//	method SP request-target SP "HTTP/1." ("0" / "1") CRLF
//
// incrementally: it remembers where it stopped and resumes there. A
// standard method (GET, POST, ...), a space and a slash (an origin-form
// target) are HTTP/1 at once, whatever follows: the bytes are clearly
// meant as HTTP, and a malformed request line is then answered 400 by the
// HTTP server rather than forwarded as opaque TCP, around HTTP's handling
// and metrics. (Text protocols with the same verbs, such as Redis's inline
// "GET key", do not send a slash there.)
type h1Scanner struct {
	state     h1State
	pos       int // index of the next byte to examine
	tokStart  int // index where the current element started
	verdict   h1Verdict
	finalized bool
	known     bool // the method is a standard one
}

const h1VersionPrefix = "HTTP/1."

func (s *h1Scanner) scan(b []byte) h1Verdict {
	if s.finalized {
		return s.verdict
	}
	v := s.run(b)
	if v != h1More {
		s.verdict, s.finalized = v, true
	}
	return v
}

func (s *h1Scanner) run(b []byte) h1Verdict {
	limit := min(len(b), MaxRequestLine)
	for ; s.pos < limit; s.pos++ {
		ch := b[s.pos]
		switch s.state {
		case h1Method:
			if isTokenChar(ch) {
				continue
			}
			if ch != ' ' || s.pos == s.tokStart {
				return h1No
			}
			s.known = knownMethod(b[s.tokStart:s.pos])
			s.state, s.tokStart = h1Target, s.pos+1
		case h1Target:
			if s.known && s.pos == s.tokStart && ch == '/' {
				return h1Yes
			}
			if ch == ' ' {
				if s.pos == s.tokStart {
					return h1No
				}
				s.state, s.tokStart = h1Version, s.pos+1
				continue
			}
			// Visible ASCII; bytes >= 0x80 are tolerated like many servers do.
			if ch <= 0x20 || ch == 0x7f {
				return h1No
			}
		case h1Version:
			i := s.pos - s.tokStart
			switch {
			case i < len(h1VersionPrefix):
				if ch != h1VersionPrefix[i] {
					return h1No
				}
			case i == len(h1VersionPrefix):
				if ch != '0' && ch != '1' {
					return h1No
				}
			case i == len(h1VersionPrefix)+1:
				if ch != '\r' {
					return h1No
				}
			default:
				if ch != '\n' {
					return h1No
				}
				return h1Yes
			}
		}
	}
	if s.pos >= MaxRequestLine {
		return h1No
	}
	return h1More
}

// knownMethod reports whether m is one of the methods of RFC 9110 or PATCH.
func knownMethod(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
		return true
	}
	return false
}

// isTokenChar reports whether c is a tchar (RFC 9110 §5.6.2).
func isTokenChar(c byte) bool {
	return int(c) < len(tokenTable) && tokenTable[c]
}

var tokenTable = [128]bool{
	'!': true, '#': true, '$': true, '%': true, '&': true, '\'': true, '*': true,
	'+': true, '-': true, '.': true, '^': true, '_': true, '`': true, '|': true, '~': true,
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true, 'G': true, 'H': true, 'I': true,
	'J': true, 'K': true, 'L': true, 'M': true, 'N': true, 'O': true, 'P': true, 'Q': true, 'R': true,
	'S': true, 'T': true, 'U': true, 'V': true, 'W': true, 'X': true, 'Y': true, 'Z': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true, 'g': true, 'h': true, 'i': true,
	'j': true, 'k': true, 'l': true, 'm': true, 'n': true, 'o': true, 'p': true, 'q': true, 'r': true,
	's': true, 't': true, 'u': true, 'v': true, 'w': true, 'x': true, 'y': true, 'z': true,
}
