package detect

const (
	tlsRecordTypeHandshake   = 0x16
	tlsHandshakeClientHello  = 1
	tlsHandshakeHeaderLen    = 4
	tlsExtensionServerName   = 0
	tlsServerNameTypeHost    = 0
	tlsMaxHostNameLen        = 255
	tlsClientHelloFixedBytes = 2 + 32 // legacy_version + random
)

// classifyTLS classifies input whose first byte is the handshake record type.
//
// A stream that starts with a handshake record header (version 3.0-3.4,
// i.e. SSLv3 to the TLS 1.3 legacy range) carrying a ClientHello is TLS. The
// ClientHello is then parsed for its server_name; a malformed or oversized
// ClientHello still classifies as TLS, with an empty SNI.
func classifyTLS(b []byte) (Result, bool) {
	opaque := Result{Protocol: Opaque}
	if len(b) >= 2 && b[1] != 3 {
		return opaque, true
	}
	if len(b) >= 3 && b[2] > 4 {
		return opaque, true
	}
	if len(b) < tlsRecordHeaderLen+1 {
		return Result{}, false
	}
	if b[5] != tlsHandshakeClientHello {
		return opaque, true
	}

	noSNI := Result{Protocol: TLS}
	recLen := int(b[3])<<8 | int(b[4])
	if recLen < tlsHandshakeHeaderLen || recLen > tlsMaxPlaintext {
		return noSNI, true
	}
	if len(b) < tlsRecordHeaderLen+tlsHandshakeHeaderLen {
		return Result{}, false
	}
	msgLen := int(b[6])<<16 | int(b[7])<<8 | int(b[8])
	const bodyStart = tlsRecordHeaderLen + tlsHandshakeHeaderLen
	if tlsHandshakeHeaderLen+msgLen <= recLen {
		// The common case: the whole ClientHello is in the first record.
		end := bodyStart + msgLen
		if len(b) < end {
			return Result{}, false
		}
		return Result{Protocol: TLS, SNI: clientHelloSNI(b[bodyStart:end])}, true
	}
	return classifyFragmentedHello(b, recLen, msgLen)
}

// classifyFragmentedHello handles a ClientHello that continues past the
// first record. It only succeeds if the whole message fits in MaxPeek bytes.
func classifyFragmentedHello(b []byte, firstRecLen, msgLen int) (Result, bool) {
	noSNI := Result{Protocol: TLS}
	// At least one more record header is needed; give up early if even the
	// best case cannot fit.
	if 2*tlsRecordHeaderLen+tlsHandshakeHeaderLen+msgLen > MaxPeek {
		return noSNI, true
	}
	need := msgLen - (firstRecLen - tlsHandshakeHeaderLen)
	off := tlsRecordHeaderLen + firstRecLen
	// Each iteration advances off by at least tlsRecordHeaderLen+1 and off
	// never exceeds MaxPeek, so the loop is bounded.
	for need > 0 {
		if off+tlsRecordHeaderLen >= MaxPeek {
			return noSNI, true
		}
		if len(b) < off+tlsRecordHeaderLen {
			return Result{}, false
		}
		h := b[off : off+tlsRecordHeaderLen]
		if h[0] != tlsRecordTypeHandshake || h[1] != 3 {
			return noSNI, true
		}
		n := int(h[3])<<8 | int(h[4])
		if n == 0 || n > tlsMaxPlaintext {
			return noSNI, true
		}
		take := min(n, need)
		end := off + tlsRecordHeaderLen + take
		if end > MaxPeek {
			return noSNI, true
		}
		if len(b) < end {
			return Result{}, false
		}
		need -= take
		off += tlsRecordHeaderLen + n
	}

	// Every fragment is present: join them. This allocation only happens
	// for the rare fragmented ClientHello.
	body := make([]byte, 0, msgLen)
	body = append(body, b[tlsRecordHeaderLen+tlsHandshakeHeaderLen:tlsRecordHeaderLen+firstRecLen]...)
	off = tlsRecordHeaderLen + firstRecLen
	for len(body) < msgLen {
		n := int(b[off+3])<<8 | int(b[off+4])
		take := min(n, msgLen-len(body))
		start := off + tlsRecordHeaderLen
		body = append(body, b[start:start+take]...)
		off = start + n
	}
	return Result{Protocol: TLS, SNI: clientHelloSNI(body)}, true
}

// clientHelloSNI returns the host_name from the server_name extension of a
// ClientHello body (RFC 8446 §4.1.2, RFC 6066 §3), or "" if there is none or
// the message is malformed.
func clientHelloSNI(p []byte) string {
	if len(p) < tlsClientHelloFixedBytes {
		return ""
	}
	p = p[tlsClientHelloFixedBytes:]
	sessionID, p, ok := vec8(p)
	if !ok || len(sessionID) > 32 {
		return ""
	}
	suites, p, ok := vec16(p)
	if !ok || len(suites) < 2 || len(suites)%2 != 0 {
		return ""
	}
	compression, p, ok := vec8(p)
	if !ok || len(compression) < 1 {
		return ""
	}
	if len(p) == 0 {
		return "" // no extensions
	}
	exts, p, ok := vec16(p)
	if !ok || len(p) != 0 {
		return ""
	}
	var host []byte
	seen := false
	for len(exts) > 0 {
		if len(exts) < 4 {
			return ""
		}
		typ := int(exts[0])<<8 | int(exts[1])
		var data []byte
		data, exts, ok = vec16(exts[2:])
		if !ok {
			return ""
		}
		if typ != tlsExtensionServerName {
			continue
		}
		if seen {
			return "" // duplicate extension
		}
		seen = true
		if host, ok = serverNameHost(data); !ok {
			return ""
		}
	}
	if len(host) == 0 {
		return ""
	}
	return string(host)
}

// serverNameHost parses the server_name extension data and returns the
// first host_name entry.
func serverNameHost(data []byte) (host []byte, ok bool) {
	list, rest, ok := vec16(data)
	if !ok || len(rest) != 0 || len(list) == 0 {
		return nil, false
	}
	for len(list) > 0 {
		typ := list[0]
		var name []byte
		name, list, ok = vec16(list[1:])
		if !ok {
			return nil, false
		}
		if typ != tlsServerNameTypeHost || host != nil {
			continue
		}
		if !validHostName(name) {
			return nil, false
		}
		host = name
	}
	return host, true
}

// validHostName accepts 1-255 visible ASCII characters; it is a sanity
// check, not a full DNS name validation.
func validHostName(name []byte) bool {
	if len(name) == 0 || len(name) > tlsMaxHostNameLen {
		return false
	}
	for _, c := range name {
		if c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// vec8 splits a vector with a one-byte length prefix off p.
func vec8(p []byte) (v, rest []byte, ok bool) {
	if len(p) < 1 {
		return nil, nil, false
	}
	n := int(p[0])
	if len(p) < 1+n {
		return nil, nil, false
	}
	return p[1 : 1+n], p[1+n:], true
}

// vec16 splits a vector with a two-byte length prefix off p.
func vec16(p []byte) (v, rest []byte, ok bool) {
	if len(p) < 2 {
		return nil, nil, false
	}
	n := int(p[0])<<8 | int(p[1])
	if len(p) < 2+n {
		return nil, nil, false
	}
	return p[2 : 2+n], p[2+n:], true
}
