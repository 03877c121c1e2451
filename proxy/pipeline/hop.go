package pipeline

// HopByHop reports whether a header field (name in any case) applies to one
// connection only and is never forwarded (RFC 9110 §7.6.1, plus the fields
// of older proxies): Connection, Keep-Alive, Proxy-Connection,
// Transfer-Encoding, TE and Upgrade. It is the one list every engine uses;
// fields named in a Connection header are hop-by-hop too, which each engine
// handles as it parses. (HTTP/2 forbids these fields; TE: trailers is
// re-added where the protocol wants it.)
func HopByHop(name string) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "te")
	case 7:
		return equalFold(name, "upgrade")
	case 10:
		return equalFold(name, "connection") || equalFold(name, "keep-alive")
	case 16:
		return equalFold(name, "proxy-connection")
	case 17:
		return equalFold(name, "transfer-encoding")
	}
	return false
}

// equalFold compares an ASCII name with a lower-case one.
func equalFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
